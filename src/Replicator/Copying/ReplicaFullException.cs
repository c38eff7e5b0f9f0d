namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// The replica's disk (or quota) is full. Not retried: the operator makes room, then resyncs.
/// No inner exception: MassTransit puts the innermost message in the error queue's MT-Fault-Message
/// header, and the operator must read this one, which names the replica (it includes the inner text).
/// </summary>
public sealed class ReplicaFullException(string message) : Exception(message)
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
