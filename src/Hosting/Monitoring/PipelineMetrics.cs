using System.Diagnostics.Metrics;

namespace Xtelemdb.Hosting.Monitoring;

/// <summary>
/// The pipeline's own instruments, on one meter that OpenTelemetry exports at /metrics. MassTransit's
/// meter adds the message rates, durations and faults of every consumer.
/// </summary>
public static class PipelineMetrics
{
    public const string MeterName = "Xtelemdb";

    static readonly Meter Meter = new(MeterName, typeof(PipelineMetrics).Assembly.GetName().Version?.ToString());

    /// <summary>Changes the watcher published, by how they were found.</summary>
    public static readonly Counter<long> WatcherChanges = Meter.CreateCounter<long>(
        "xtelemdb.watcher.changes", "{file}",
        "Changes published by the watcher; source=live (inotify), scan (start-up) or poll (missed by inotify, caught by the poll)");

    /// <summary>Files under a root that are not backed up (a FIFO, a device, a socket), counted once each.</summary>
    public static readonly Counter<long> WatcherSkipped = Meter.CreateCounter<long>(
        "xtelemdb.watcher.skipped", "{file}", "Entries under a root that are not regular files and are not backed up, by kind; each counted when first seen");

    public static readonly Counter<long> OriginUpserts = Meter.CreateCounter<long>(
        "xtelemdb.inventory.origin_upserts", "{file}", "Observations the inventory upserted into file_origins");

    /// <summary>Resyncs answered, by outcome (requested, refused): what an operator's resync came to.</summary>
    public static readonly Counter<long> Resyncs = Meter.CreateCounter<long>(
        "xtelemdb.inventory.resyncs", "{request}", "Resyncs the inventory answered, by outcome: requested (copies asked for) or refused (see resync-results)");

    public static readonly Counter<long> ResyncCopiesRequested = Meter.CreateCounter<long>(
        "xtelemdb.inventory.resync_copies_requested", "{file}", "Copies requested by resyncs");

    public static readonly Counter<long> Copies = Meter.CreateCounter<long>(
        "xtelemdb.replicator.copies", "{file}", "Copies made, per replica; a quick check that found the copy current is result=current");

    public static readonly Counter<long> BytesCopied = Meter.CreateCounter<long>(
        "xtelemdb.replicator.copied", "By", "Bytes copied, per replica");

    public static readonly Histogram<double> CopyDuration = Meter.CreateHistogram(
        "xtelemdb.replicator.copy_duration", "s", "Time to copy one file, per replica",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800] });

    public static readonly Counter<long> CopyFailures = Meter.CreateCounter<long>(
        "xtelemdb.replicator.failures", "{file}", "Copies that failed, per replica and reason (full, ssh, io, changing)");

    /// <summary>Each replica's backlog as the inventory last counted it; empty in a process without the inventory.</summary>
    public static IReadOnlyList<ReplicaBacklog> Backlog { get; set; } = [];

    static readonly ObservableGauge<long> BacklogFiles = Meter.CreateObservableGauge("xtelemdb.replica.backlog_files",
        () => Backlog.Select(b => new Measurement<long>(b.Files, Replica(b.Url))), "{file}", "Files whose current version the replica lacks");

    static readonly ObservableGauge<long> BacklogBytes = Meter.CreateObservableGauge("xtelemdb.replica.backlog",
        () => Backlog.Select(b => new Measurement<long>(b.Bytes, Replica(b.Url))), "By", "Bytes the replica lacks");

    static readonly ObservableGauge<double> OldestBehindAge = Meter.CreateObservableGauge("xtelemdb.replica.oldest_behind_age",
        () => Backlog.Select(b => new Measurement<double>(b.OldestAge.TotalSeconds, Replica(b.Url))), "s",
        "Age (from its mtime) of the oldest file the replica lacks; 0 when in sync");

    public static KeyValuePair<string, object?> Replica(string url) => new("replica", url);
}

public sealed record ReplicaBacklog(string Url, long Files, long Bytes, TimeSpan OldestAge);
