using System.IO.Hashing;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// One copy of one file into place, keeping rule 1 and rule 2 of the design: the bytes go to a
/// temporary name in the target folder, are flushed with the mtime set, and are renamed over the
/// target only if the source stated the same version before and after.
/// </summary>
public static class LocalFileCopy
{
    const int ChunkSize = 1 << 20;
    const string PartSuffix = ".xtelemdb-part";

    /// <param name="progress">Called with the bytes copied so far after each chunk.</param>
    /// <returns>The version copied and the checksum of its bytes, or null when the source changed meanwhile.</returns>
    public static async Task<(FileVersion Version, string Checksum)?> CopyAsync(
        string source, string target, Action<long>? progress, CancellationToken cancellationToken)
    {
        using var input = File.OpenHandle(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.SequentialScan);
        var before = StatOf(input);

        var folder = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(folder);
        var part = PartPath(target);
        var hash = new XxHash3();
        long copied;
        var output = CreatePart(part, before.Size);
        try
        {
            await using (output)
            {
                copied = await CopyBytesAsync(input, output, before.Size, hash, progress, cancellationToken);
                File.SetLastWriteTimeUtc(output.SafeFileHandle, before.Mtime);
                output.Flush(flushToDisk: true);
            }
            var after = StatOf(input);
            if (copied != before.Size || !after.SameAs(before) || !SameFile(source, before))
            {
                File.Delete(part);
                return null;
            }
            File.Move(part, target, overwrite: true);
        }
        catch
        {
            TryDelete(part);
            throw;
        }
        Posix.FsyncDirectory(folder);
        return (before, FileChecksum.Format(hash));
    }

    static FileVersion StatOf(SafeFileHandle handle) =>
        new(File.GetLastWriteTimeUtc(handle), RandomAccess.GetLength(handle));

    /// <summary>A path rewritten in place (truncate and write) shows through the handle; one replaced by rename does not, so look at the path too.</summary>
    static bool SameFile(string source, FileVersion before) => FileVersion.Of(source) is { } now && now.SameAs(before);

    static async Task<long> CopyBytesAsync(SafeFileHandle input, FileStream output, long size, XxHash3 hash,
        Action<long>? progress, CancellationToken cancellationToken)
    {
        // Two buffers: the next read runs while the current chunk is hashed and written.
        byte[][] buffers = [new byte[ChunkSize], new byte[ChunkSize]];
        var current = 0;
        long offset = 0;
        var read = ReadAsync(input, buffers[current], offset, size, cancellationToken);
        while (true)
        {
            var count = await read;
            if (count == 0)
                return offset;
            var chunk = buffers[current].AsMemory(0, count);
            offset += count;
            current ^= 1;
            read = ReadAsync(input, buffers[current], offset, size, cancellationToken);
            hash.Append(chunk.Span);
            await output.WriteAsync(chunk, cancellationToken);
            progress?.Invoke(offset);
        }
    }

    /// <summary>Reads no further than the stated size: bytes appended later belong to a later version.</summary>
    static ValueTask<int> ReadAsync(SafeFileHandle input, byte[] buffer, long offset, long size, CancellationToken cancellationToken)
    {
        var length = (int)Math.Min(buffer.Length, size - offset);
        return length <= 0 ? ValueTask.FromResult(0) : RandomAccess.ReadAsync(input, buffer.AsMemory(0, length), offset, cancellationToken);
    }

    /// <summary>
    /// The part file is locked (flock) while written, so another replicator process that meets it
    /// knows it is busy; one left by a killed process is unlocked, and is removed.
    /// </summary>
    static FileStream CreatePart(string part, long size)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
            // Reserves the space at once: a full disk fails here, before any byte is written.
            PreallocationSize = size,
        };
        try
        {
            return new FileStream(part, options);
        }
        catch (IOException) when (File.Exists(part))
        {
            using (new FileStream(part, FileMode.Open, FileAccess.Read, FileShare.None))
            {
                // Opened with an exclusive lock: nobody is writing it, so it is a leftover.
            }
            File.Delete(part);
            return new FileStream(part, options);
        }
    }

    /// <summary>".name.xtelemdb-part" beside the target; a name too long for that gets a hashed one.</summary>
    public static string PartPath(string target)
    {
        var name = Path.GetFileName(target);
        var partName = "." + name + PartSuffix;
        if (Encoding.UTF8.GetByteCount(partName) > 255)
            partName = "." + Convert.ToHexStringLower(XxHash128.Hash(Encoding.UTF8.GetBytes(name))) + PartSuffix;
        return Path.Combine(Path.GetDirectoryName(target)!, partName);
    }

    static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
