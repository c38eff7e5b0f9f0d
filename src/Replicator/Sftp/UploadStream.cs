using System.IO.Hashing;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// The source's bytes as SSH.NET's pipelined upload reads them: up to the stated size, hashed, and
/// paced. A cancelled token (copy_timeout, shutdown) ends the upload at the next read.
/// </summary>
sealed class UploadStream(SourceFile source, XxHash3 hash, BandwidthLimit? limit, CancellationToken cancellationToken) : Stream
{
    public long BytesRead { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var length = (int)Math.Min(buffer.Length, source.Version.Size - BytesRead);
        if (length <= 0)
            return 0;
        var read = RandomAccess.Read(source.Handle, buffer[..length], BytesRead);
        // A source that changed is abandoned at once: the upload ends short, and the copier sees it.
        if (read == 0 || BytesRead / SourceFile.CheckEvery != (BytesRead + read) / SourceFile.CheckEvery && source.ChangedSinceOpened())
            return 0;
        limit?.Take(read);
        hash.Append(buffer[..read]);
        BytesRead += read;
        return read;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => source.Version.Size;
    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
