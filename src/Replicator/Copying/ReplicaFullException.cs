namespace Xtelemdb.Replicator.Copying;

/// <summary>The replica's disk (or quota) is full. Not retried: the operator makes room, then resyncs.</summary>
public sealed class ReplicaFullException(string message, Exception inner) : Exception(message, inner)
{
    const int NoSpace = 28, QuotaExceeded = 122; // ENOSPC, EDQUOT

    /// <summary>A write failed for want of space, or a preallocation found less room than the file needs.</summary>
    public static bool IsFull(IOException error, string folder, long needed)
    {
        if (error.HResult is NoSpace or QuotaExceeded)
            return true;
        try
        {
            return Directory.Exists(folder) && new DriveInfo(folder).AvailableFreeSpace < needed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
    }
}
