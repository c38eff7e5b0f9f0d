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

    internal const int ReadOnly = 0, Directory = 0x10000, CloseOnExec = 0x80000; // O_RDONLY, O_DIRECTORY, O_CLOEXEC on Linux

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int Syncfs(SafeFileHandle fd);

    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static partial int Fstatfs(SafeFileHandle fd, [Out] long[] buffer);

    /// <summary>The file system a file is on: its type (statfs f_type) and id (f_fsid); null where it cannot be told.</summary>
    public static (long Type, long Id)? FileSystemOf(SafeFileHandle handle)
    {
        // struct statfs of 64-bit Linux: f_type first, f_fsid the eighth word.
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess)
            return null;
        var buffer = new long[16];
        return Fstatfs(handle, buffer) == 0 ? (buffer[0], buffer[7]) : null;
    }

    /// <summary>
    /// Whether one syncfs makes every file on this kind of file system durable and reports the write
    /// errors since the file it is called on was opened: ext4, XFS and Btrfs on Linux 5.8 and later.
    /// FUSE, NFS and others may answer syncfs without their server or daemon; their files are fsynced each.
    /// </summary>
    public static bool SyncsWholeFileSystem(long type) =>
        type is 0xEF53 or 0x58465342 or 0x9123683E && Environment.OSVersion.Version >= new Version(5, 8);

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
