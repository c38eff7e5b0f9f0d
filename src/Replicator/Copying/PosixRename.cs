using System.Runtime.InteropServices;

namespace Xtelemdb.Replicator.Copying;

/// <summary>What .NET does not offer: a rename that never replaces what is at its target.</summary>
static partial class Posix
{
    const int RenameAtCurrentFolder = -100; // AT_FDCWD
    const uint RenameNoReplaceFlag = 1; // RENAME_NOREPLACE

    [LibraryImport("libc", EntryPoint = "renameat2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int RenameAt2(int fromFolder, string from, int toFolder, string to, uint flags);

    /// <summary>renameat2(2) with RENAME_NOREPLACE.</summary>
    /// <returns>
    /// False where nothing was renamed and a copy should be made instead: <paramref name="from"/> is
    /// gone (ENOENT), <paramref name="to"/> exists (EEXIST), or the file system cannot refuse to
    /// replace (EINVAL, ENOSYS, EOPNOTSUPP) or rename across (EXDEV).
    /// </returns>
    public static bool RenameNoReplace(string from, string to)
    {
        if (!OperatingSystem.IsLinux())
            return false;
        if (RenameAt2(RenameAtCurrentFolder, from, RenameAtCurrentFolder, to, RenameNoReplaceFlag) == 0)
            return true;
        var error = Marshal.GetLastPInvokeError();
        return error is 2 or 17 or 22 or 38 or 95 or 18
            ? false
            : throw new IOException($"cannot rename {from} to {to}: {Marshal.GetPInvokeErrorMessage(error)}", error);
    }
}
