using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// What .NET does not offer: fsync of a folder (it makes a rename durable), syncfs, and preallocation
/// of a file that already exists.
/// </summary>
static partial class Posix
{
    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);

    const int KeepSize = 1; // FALLOC_FL_KEEP_SIZE: blocks reserved, the length still that of the bytes written

    const int ReadOnly = 0, Directory = 0x10000; // O_RDONLY, O_DIRECTORY on Linux

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int Syncfs(SafeFileHandle fd);

    /// <summary>Flushes everything written to the file system that holds the file (data and metadata) with one call.</summary>
    public static void SyncFileSystem(SafeFileHandle handle, string folder)
    {
        if (Syncfs(handle) != 0)
            throw new IOException($"cannot flush the file system of {folder}: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>Reserves the file's blocks: a full disk fails here, before any byte is written.</summary>
    public static void Preallocate(SafeFileHandle handle, long length, string path)
    {
        if (!OperatingSystem.IsLinux() || length <= 0)
            return;
        if (Fallocate(handle, KeepSize, 0, length) == 0)
            return;
        var error = Marshal.GetLastPInvokeError();
        // EOPNOTSUPP/EINVAL: a file system without preallocation (some network ones); the writes will tell.
        if (error is not (95 or 22))
            throw new IOException($"cannot reserve {length} bytes for {path}: {Marshal.GetPInvokeErrorMessage(error)}", error);
    }

    public static void FsyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux())
            return;
        var fd = Open(path, ReadOnly | Directory);
        if (fd < 0)
            throw new IOException($"cannot open folder {path} to flush it: {Marshal.GetLastPInvokeErrorMessage()}");
        try
        {
            if (Fsync(fd) != 0)
                throw new IOException($"cannot flush folder {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        finally
        {
            _ = Close(fd);
        }
    }
}
