using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// A large part file sent to the disk while it is written, a window at a time, rather than all at
/// once by the flush at its end: each window is started (sync_file_range WRITE) as soon as it is
/// written, and the window before it is waited for and dropped from the page cache (posix_fadvise
/// DONTNEED), as PostgreSQL's flush_after and Linux's own advice for streaming writes do. The disk
/// then writes while the copy reads, a copy keeps at most two windows in the cache, and 2 GiB of
/// copies do not evict what the host's other programs cache.
/// <para>
/// Nothing here makes a copy durable: sync_file_range neither flushes the disk's write cache nor
/// the file's metadata, so the flush at the end (FlushGroup) stays, and rule 1 with it. An error
/// here fails the copy: sync_file_range that waits reports a write error and marks it seen for
/// this file descriptor, so the fsync at the end would no longer report it.
/// </para>
/// <para>
/// Measured with bench/Bench copy-engine, 8 x 256 MiB on ext4, caches dropped, variants interleaved
/// over 4 rounds on this shared 2-core machine (medians): 3.56 s reading and writing alone, 2.76 s
/// with 32 MiB windows (faster in each round, 1.11-1.41x) at half the system CPU time; 16 MiB
/// windows 3.29 s, 64 MiB 3.14 s. Starting the writeback of each 8 MiB without waiting and dropping
/// was slower than nothing (6.1 s against 3.8 s in another 4 rounds): the dirty pages still fill
/// the cache, and the copies' threads wait on the disk's queue besides.
/// </para>
/// </summary>
static partial class EarlyWriteback
{
    public const long Window = 32L << 20;

    const uint WaitBefore = 1, Write = 2, WaitAfter = 4; // SYNC_FILE_RANGE_*
    const int DontNeed = 4; // POSIX_FADV_DONTNEED on Linux

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(SafeFileHandle fd, long offset, long length, uint flags);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int Fadvise(SafeFileHandle fd, long offset, long length, int advice);

    /// <summary>Called once bytes [offset, offset + count) of the part are written; count is at most a window.</summary>
    public static void Written(SafeFileHandle part, string partPath, long offset, long count)
    {
        var end = offset + count;
        if (!OperatingSystem.IsLinux() || end / Window == offset / Window)
            return;
        var completed = end / Window * Window - Window; // the window that this write completed
        Call(part, partPath, completed, Write);
        if (completed < Window)
            return;
        var earlier = completed - Window;
        Call(part, partPath, earlier, WaitBefore | Write | WaitAfter);
        // Advice: a page it cannot drop stays cached, and nothing is lost.
        _ = Fadvise(part, earlier, Window, DontNeed);
    }

    static void Call(SafeFileHandle part, string partPath, long offset, uint flags)
    {
        if (SyncFileRange(part, offset, Window, flags) == 0)
            return;
        var error = Marshal.GetLastPInvokeError();
        // The errno stays as HResult: ENOSPC is told as a full replica.
        throw new IOException($"cannot write {partPath} to the disk at bytes {offset}-{offset + Window}: {Marshal.GetPInvokeErrorMessage(error)}", error);
    }
}
