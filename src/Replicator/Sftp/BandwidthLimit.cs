using System.Diagnostics;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>A token bucket shared by a replica's transfers: at most so many bytes per second, in bursts of a second at most.</summary>
public sealed class BandwidthLimit(long bytesPerSecond)
{
    readonly Lock gate = new();
    readonly Stopwatch clock = Stopwatch.StartNew();
    double tokens = bytesPerSecond;
    TimeSpan last;

    /// <summary>Waits until <paramref name="bytes"/> may be sent.</summary>
    public void Take(int bytes)
    {
        TimeSpan wait;
        lock (gate)
        {
            var now = clock.Elapsed;
            tokens = Math.Min(bytesPerSecond, tokens + (now - last).TotalSeconds * bytesPerSecond);
            last = now;
            tokens -= bytes;
            wait = tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-tokens / bytesPerSecond);
        }
        if (wait > TimeSpan.Zero)
            Thread.Sleep(wait);
    }
}
