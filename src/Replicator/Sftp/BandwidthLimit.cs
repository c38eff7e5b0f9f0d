using System.Diagnostics;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// A token bucket shared by a replica's transfers: at most the rate its timetable gives for the
/// present moment, in bursts of a second at most. A rate that changes (the timetable's next entry)
/// holds from the next chunk on.
/// </summary>
public sealed class BandwidthLimit(BandwidthSchedule schedule, TimeProvider? clock = null)
{
    readonly Lock gate = new();
    readonly TimeProvider time = clock ?? TimeProvider.System;
    readonly long started = Stopwatch.GetTimestamp();
    double tokens;
    TimeSpan last;

    /// <summary>Bytes per second allowed now; null: no limit.</summary>
    public long? RateNow => schedule.RateAt(time.GetLocalNow().DateTime);

    /// <summary>Waits until <paramref name="bytes"/> may be sent.</summary>
    public async ValueTask TakeAsync(int bytes, CancellationToken cancellationToken)
    {
        TimeSpan wait;
        lock (gate)
        {
            var now = Stopwatch.GetElapsedTime(started);
            if (RateNow is not { } rate)
            {
                tokens = 0;
                last = now;
                return;
            }
            tokens = Math.Min(rate, tokens + (now - last).TotalSeconds * rate) - bytes;
            last = now;
            wait = tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-tokens / rate);
        }
        if (wait > TimeSpan.Zero)
            await Task.Delay(wait, cancellationToken);
    }
}
