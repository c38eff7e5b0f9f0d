using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Xtelemdb.Hosting;

/// <summary>What a path is, by its file type bits: .NET tells a folder and a symlink apart, but not a FIFO, a device or a socket from a file.</summary>
public enum FileKind { Regular, Folder, Symlink, Fifo, CharacterDevice, BlockDevice, Socket, Missing, Unknown }

/// <summary>
/// lstat's file type through statx(2), whose layout is the same on every architecture. A FIFO
/// under a root blocks whoever opens it for reading, and a device is not data: neither is copied.
/// </summary>
public static partial class FileKinds
{
    const int AtCurrentFolder = -100, AtNoFollow = 0x100, AtEmptyPath = 0x1000, StatxType = 1, StatxIno = 0x100, StatxSize = 256;
    const int ModeOffset = 28, InoOffset = 32, DevMajorOffset = 136;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, Span<byte> buffer);

    public static FileKind Of(string path)
    {
        if (!OperatingSystem.IsLinux())
            return File.Exists(path) ? FileKind.Regular : Directory.Exists(path) ? FileKind.Folder : FileKind.Missing;
        Span<byte> buffer = stackalloc byte[StatxSize];
        if (Statx(AtCurrentFolder, path, AtNoFollow, StatxType, buffer) != 0)
            return Marshal.GetLastPInvokeError() is 2 or 20 ? FileKind.Missing : FileKind.Unknown; // ENOENT, ENOTDIR
        return (BitConverter.ToUInt16(buffer[ModeOffset..]) & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Folder,
            0xA000 => FileKind.Symlink,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Unknown,
        };
    }

    /// <summary>Whether the path (not followed) is the very file open behind the handle: same device, same inode.</summary>
    public static bool SameFile(SafeFileHandle handle, string path)
    {
        if (!OperatingSystem.IsLinux())
            return File.Exists(path);
        Span<byte> opened = stackalloc byte[StatxSize], named = stackalloc byte[StatxSize];
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (Statx((int)handle.DangerousGetHandle(), "", AtEmptyPath, StatxIno, opened) != 0)
                throw new IOException($"cannot stat the open file {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        finally
        {
            if (added)
                handle.DangerousRelease();
        }
        if (Statx(AtCurrentFolder, path, AtNoFollow, StatxIno, named) != 0)
            return false;
        return opened.Slice(InoOffset, 8).SequenceEqual(named.Slice(InoOffset, 8))
            && opened.Slice(DevMajorOffset, 8).SequenceEqual(named.Slice(DevMajorOffset, 8));
    }

    /// <summary>"a FIFO", "a character device"…: for messages.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Fifo => "a FIFO",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Symlink => "a symlink",
        FileKind.Folder => "a folder",
        _ => "not a regular file",
    };
}
