using System.Buffers;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// A large file's bytes copied inside the kernel with copy_file_range(2), chunk by chunk, each
/// chunk hashed by reading it back from the part file.
/// <para>
/// The part, not the source, is hashed: the recorded checksum must describe the bytes that were
/// written. Hashing the source range after the kernel copied it would describe them only if the
/// source did not change in between, and SourceFile's stat before and after cannot promise that
/// (a rewrite at the same size within one timestamp tick leaves the stat as it was). Read back,
/// the checksum is that of the copy whatever the source did; a source that changed is still
/// thrown away by SourceFile's check, as on the read and write path. On a file system that copies
/// by sharing extents (XFS, Btrfs) the read-back reads the shared blocks: the bytes the target holds.
/// </para>
/// </summary>
static partial class KernelCopy
{
    const int ChunkSize = 8 << 20;
    const int HashBuffer = 1 << 20;

    // EXDEV, EINVAL, ENOSYS, EOPNOTSUPP: file systems that cannot copy between each other, or a kernel without the call.
    const int CrossDevice = 18, Invalid = 22, NotImplemented = 38, NotSupported = 95;

    [LibraryImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    private static partial nint CopyFileRange(SafeFileHandle input, ref long inputOffset, SafeFileHandle output, ref long outputOffset, nuint length, uint flags);

    /// <summary>
    /// Off unless XTELEMDB_COPY_FILE_RANGE=1. Measured with bench copy-engine, caches dropped,
    /// rounds interleaved, on a disk shared with another benchmark (medians, min-max, user+sys CPU):
    /// ext4, 8 x 256 MiB: 27.1 s (11.8-53.4) against 29.8 s (11.7-53.7) reading and writing, paired
    /// ratio 1.01, CPU 6.5 s against 4.9 s: no gain. ext4, 2 x 1 GiB, in a quieter hour: 6.2 s
    /// (5.6-7.5) against 15.7 s (15.7-19.8), CPU 2.2 s against 6.5 s. The two disagree and want
    /// measuring again on a quiet machine before ext4 gets it by default. XFS (reflink): 6.7 s
    /// against 43 s, 8.1 s against 29 s, but only because the kernel shares the source's blocks
    /// instead of writing new ones: such a replica is no independent copy, a bad block damages origin
    /// and backup at once. Across file systems the kernel refuses (EXDEV) and nothing changes.
    /// </summary>
    internal static bool Enabled { get; set; } = OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("XTELEMDB_COPY_FILE_RANGE") == "1";

    /// <summary>
    /// Copies the stated size of <paramref name="input"/> to <paramref name="output"/> from offset 0.
    /// </summary>
    /// <returns>
    /// The bytes copied (short when the source was seen to change), or null when the kernel cannot
    /// copy between these files and nothing was copied: the caller copies them itself.
    /// </returns>
    public static long? TryCopy(SourceFile input, SafeFileHandle output, string part, XxHash3 hash, Action<long>? progress, CancellationToken cancellationToken)
    {
        using var readBack = ReopenForReading(output, part);
        var buffer = ArrayPool<byte>.Shared.Rent(HashBuffer);
        try
        {
            long offset = 0;
            while (offset < input.Version.Size)
            {
                if (CopyChunk(input, output, part, offset, (int)Math.Min(ChunkSize, input.Version.Size - offset)) is not { } count)
                    return null;
                if (count == 0)
                    return offset; // the source shrank: SourceFile's check throws this copy away
                // As on the read and write path: a growing file is abandoned at once, cancellation (copy_timeout) is seen per chunk.
                if (offset / SourceFile.CheckEvery != (offset + count) / SourceFile.CheckEvery && input.ChangedSinceOpened())
                    return offset;
                cancellationToken.ThrowIfCancellationRequested();
                HashRange(readBack, part, offset, count, hash, buffer);
                offset += count;
                progress?.Invoke(offset);
            }
            return offset;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <returns>Bytes copied (0 at the source's end), or null when unsupported before anything was copied.</returns>
    static long? CopyChunk(SourceFile input, SafeFileHandle output, string part, long offset, int length)
    {
        long inputOffset = offset, outputOffset = offset;
        var copied = CopyFileRange(input.Handle, ref inputOffset, output, ref outputOffset, (nuint)length, 0);
        if (copied >= 0)
            return copied;
        var error = Marshal.GetLastPInvokeError();
        if (offset == 0 && error is CrossDevice or Invalid or NotImplemented or NotSupported)
            return null;
        // The errno stays as HResult: ENOSPC and EDQUOT are told as a full replica.
        throw new IOException($"cannot copy {input.Path} to {part} at byte {offset}: {Marshal.GetPInvokeErrorMessage(error)}", error);
    }

    /// <summary>
    /// The part opened again for reading through /proc/self/fd: the same file whatever its name now
    /// leads to, and without .NET's flock, which the writer's exclusive lock would refuse.
    /// </summary>
    static SafeFileHandle ReopenForReading(SafeFileHandle output, string part)
    {
        var fd = Posix.Open($"/proc/self/fd/{output.DangerousGetHandle()}", Posix.ReadOnly | Posix.CloseOnExec);
        if (fd < 0)
            throw new IOException($"cannot open {part} again to hash what was copied: {Marshal.GetLastPInvokeErrorMessage()}");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    static void HashRange(SafeFileHandle readBack, string part, long offset, long length, XxHash3 hash, byte[] buffer)
    {
        var end = offset + length;
        while (offset < end)
        {
            var count = RandomAccess.Read(readBack, buffer.AsSpan(0, (int)Math.Min(buffer.Length, end - offset)), offset);
            if (count == 0)
                throw new IOException($"{part} ends at byte {offset}, before the {end} bytes just copied into it");
            hash.Append(buffer.AsSpan(0, count));
            offset += count;
        }
    }
}
