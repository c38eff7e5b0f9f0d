using System.Buffers;
using System.IO.Hashing;
using System.Text;
using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// One copy of one file into place on a local replica, keeping rule 1 of the design: the bytes
/// go to a temporary name in the target folder, are flushed with the mtime set, and are renamed
/// over the target only if the source stated the same version before and after.
/// </summary>
public static class LocalFileCopy
{
    const int ChunkSize = 1 << 20;
    public const string PartSuffix = ".xtelemdb-part";

    /// <param name="progress">Called with the bytes copied so far after each chunk.</param>
    /// <param name="flushes">The replica's group of copies made durable together; a copy without one is flushed alone.</param>
    /// <returns>The version copied and the checksum of its bytes, or null when the source changed meanwhile.</returns>
    public static async Task<(FileVersion Version, string Checksum)?> CopyAsync(
        string source, string target, Action<long>? progress, CancellationToken cancellationToken, string? mustHashTo = null, FlushGroup? flushes = null)
    {
        using var input = SourceFile.Open(source);
        var folder = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(folder);
        var part = PartPath(target);
        var hash = new XxHash3();
        // The part file stays open, and so locked, until it is renamed or removed: another
        // replicator process on this host can neither write it nor move it meanwhile.
        var opened = System.Diagnostics.Stopwatch.GetTimestamp();
        await using (var output = OpenPart(part, target, input.Version.Size))
        {
            try
            {
                var copied = await CopyBytesAsync(input, output, hash, progress, cancellationToken);
                if (!input.Unchanged(copied))
                {
                    File.Delete(part);
                    return null;
                }
                if (mustHashTo is not null && FileChecksum.Format(hash) is var written && written != mustHashTo)
                    throw new ChecksumMismatchException($"{source} hashes to {written}, not {mustHashTo}: {target} is left as it was");
                File.SetLastWriteTimeUtc(output.SafeFileHandle, input.Version.Mtime);
                // Flushed, renamed into place and the rename flushed, with whatever else the group holds.
                await (flushes ?? new FlushGroup()).CommitAsync(output, part, target, opened);
            }
            catch
            {
                TryDelete(part);
                throw;
            }
        }
        return (input.Version, FileChecksum.Format(hash));
    }

    static async Task<long> CopyBytesAsync(SourceFile input, FileStream output, XxHash3 hash, Action<long>? progress, CancellationToken cancellationToken)
    {
        if (input.Version.Size <= ChunkSize)
            return CopySmall(input, output, hash, progress);
        if (KernelCopy.Enabled && KernelCopy.TryCopy(input, output.SafeFileHandle, output.Name, hash, progress, cancellationToken) is { } copied)
            return copied;
        // Two buffers: the next read runs while the current chunk is hashed and written. Pooled and
        // no larger than the file: a fresh 2 MiB per small file was most of the CPU of a small-file sync.
        var size = (int)Math.Clamp(input.Version.Size, 1, ChunkSize);
        byte[][] buffers = [ArrayPool<byte>.Shared.Rent(size), ArrayPool<byte>.Shared.Rent(size)];
        try
        {
            var current = 0;
            long offset = 0;
            var read = ReadAsync(input, buffers[current].AsMemory(0, size), offset, cancellationToken);
            while (true)
            {
                var count = await read;
                if (count == 0)
                    return offset;
                // A growing file is abandoned as soon as it is seen to grow: what is copied so far is thrown away anyway.
                if (offset / SourceFile.CheckEvery != (offset + count) / SourceFile.CheckEvery && input.ChangedSinceOpened())
                    return offset;
                // File reads and writes do not observe the token once started: copy_timeout and shutdown are seen here.
                cancellationToken.ThrowIfCancellationRequested();
                var chunk = buffers[current].AsMemory(0, count);
                offset += count;
                current ^= 1;
                read = ReadAsync(input, buffers[current].AsMemory(0, size), offset, cancellationToken);
                hash.Append(chunk.Span);
                await output.WriteAsync(chunk, cancellationToken);
                EarlyWriteback.Written(output.SafeFileHandle, output.Name, offset - count, count);
                progress?.Invoke(offset);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffers[0]);
            ArrayPool<byte>.Shared.Return(buffers[1]);
        }
    }

    /// <summary>
    /// A file of one chunk or less, read and written in place: for the many small files of a night,
    /// the thread-pool hops of asynchronous reads cost more than the reads themselves.
    /// </summary>
    static long CopySmall(SourceFile input, FileStream output, XxHash3 hash, Action<long>? progress)
    {
        var size = (int)input.Version.Size;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            var offset = 0;
            int count;
            while (offset < size && (count = RandomAccess.Read(input.Handle, buffer.AsSpan(offset, size - offset), offset)) > 0)
                offset += count;
            hash.Append(buffer.AsSpan(0, offset));
            output.Write(buffer, 0, offset);
            progress?.Invoke(offset);
            return offset;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads no further than the stated size: bytes appended later belong to a later version.</summary>
    static ValueTask<int> ReadAsync(SourceFile input, Memory<byte> buffer, long offset, CancellationToken cancellationToken)
    {
        var length = (int)Math.Min(buffer.Length, input.Version.Size - offset);
        return length <= 0 ? ValueTask.FromResult(0) : RandomAccess.ReadAsync(input.Handle, buffer[..length], offset, cancellationToken);
    }

    /// <summary>
    /// The part file, opened and locked (flock, as .NET does for FileShare.None) before it is
    /// truncated: one left by a killed process is unlocked and is reused; one that another process
    /// holds is busy, and this copy fails to be retried later. The lock is on the file, not the
    /// name: a file that the name no longer leads to once locked was just renamed into place by
    /// its writer, and is let go.
    /// </summary>
    const int WouldBlock = 11; // EWOULDBLOCK from flock: .NET's error for a file locked by another open

    static FileStream OpenPart(string part, string target, long size)
    {
        // A symlink planted under the part's name is never a part file: opening it would create its target.
        if (FileKinds.Of(part) == FileKind.Symlink)
            File.Delete(part);
        for (var attempt = 0; ; attempt++)
        {
            FileStream output;
            try
            {
                output = new FileStream(part, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None, bufferSize: 0);
            }
            catch (IOException e) when (e.HResult == WouldBlock)
            {
                throw new IOException($"another replicator process on this host is copying {target} now (its part file {part} is locked); "
                    + "this request is retried", e);
            }
            bool same;
            try
            {
                same = FileKinds.SameFile(output.SafeFileHandle, part);
            }
            catch
            {
                output.Dispose();
                throw;
            }
            if (!same)
            {
                output.Dispose();
                if (attempt < 3)
                    continue;
                throw new IOException($"the part file {part} keeps being replaced by another process; this request is retried");
            }
            try
            {
                output.SetLength(0);
                Posix.Preallocate(output.SafeFileHandle, size, part);
                return output;
            }
            catch
            {
                TryDelete(part); // still locked: the file is ours to remove
                output.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// ".name.xtelemdb-part" beside the target, or ".name.WRITER.xtelemdb-part" where replicators of
    /// several hosts may write one folder (SFTP) and must not share a part file; a name too long for
    /// that gets a hashed one.
    /// </summary>
    public static string PartPath(string target, string? writer = null)
    {
        var name = Path.GetFileName(target);
        var suffix = writer is null ? PartSuffix : "." + writer + PartSuffix;
        var partName = "." + name + suffix;
        if (Encoding.UTF8.GetByteCount(partName) > 255)
            partName = "." + Convert.ToHexStringLower(XxHash128.Hash(Encoding.UTF8.GetBytes(name))) + suffix;
        return Path.GetDirectoryName(target) + "/" + partName;
    }

    static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
