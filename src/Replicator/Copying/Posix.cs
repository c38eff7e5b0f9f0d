using System.Runtime.InteropServices;

namespace Xtelemdb.Replicator.Copying;

/// <summary>fsync of a folder, which .NET does not offer: it makes a rename durable.</summary>
static partial class Posix
{
    const int ReadOnly = 0, Directory = 0x10000; // O_RDONLY, O_DIRECTORY on Linux

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

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
