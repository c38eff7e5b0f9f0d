using System.Collections.Concurrent;
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

    /// <summary>Files whose row the database refuses for what it holds (a path too long for its index), by SQL state.</summary>
    public static readonly Counter<long> OriginsRefused = Meter.CreateCounter<long>(
        "xtelemdb.inventory.origins_refused", "{file}", "Observations the database refused for what their row holds (sqlstate 54000: a path too long for the index); not recorded, not backed up, listed by verify");

    /// <summary>Resyncs answered, by outcome (requested, refused): what an operator's resync came to.</summary>
    public static readonly Counter<long> Resyncs = Meter.CreateCounter<long>(
        "xtelemdb.inventory.resyncs", "{request}", "Resyncs the inventory answered, by outcome: requested (copies asked for) or refused (see resync-results)");

    public static readonly Counter<long> ResyncCopiesRequested = Meter.CreateCounter<long>(
        "xtelemdb.inventory.resync_copies_requested", "{file}", "Copies requested by resyncs");

    public static readonly Counter<long> Copies = Meter.CreateCounter<long>(
        "xtelemdb.replicator.copies", "{file}", "Copies made, per replica; a quick check that found the copy current is result=current, a moved file's copy renamed on the replica result=moved");

    public static readonly Counter<long> BytesCopied = Meter.CreateCounter<long>(
        "xtelemdb.replicator.copied", "By", "Bytes copied, per replica");

    public static readonly Histogram<double> CopyDuration = Meter.CreateHistogram(
        "xtelemdb.replicator.copy_duration", "s", "Time to copy one file, per replica",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800] });

    public static readonly Counter<long> Flushes = Meter.CreateCounter<long>(
        "xtelemdb.replicator.flushes", "{flush}", "Flushes that made local copies durable (a syncfs for a group of copies, an fsync for a lone copy or a folder); copies per flush shows the grouping");

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

    /// <summary>Copies read back by the rolling fixity check, by result: good, repaired, damaged (not repaired), missing, different.</summary>
    public static readonly Counter<long> FixityChecked = Meter.CreateCounter<long>(
        "xtelemdb.fixity.checked", "{file}", "Copies the rolling fixity check read back, per replica and result (good, repaired, damaged, missing, different)");

    public static readonly Counter<long> FixityDamaged = Meter.CreateCounter<long>(
        "xtelemdb.fixity.damaged", "{file}", "Copies whose bytes no longer hashed to their checksum (size and mtime unchanged), repaired or not");

    public static readonly Counter<long> FixityRead = Meter.CreateCounter<long>(
        "xtelemdb.fixity.read", "By", "Bytes the rolling fixity check read");

    /// <summary>Each checked replica's period and the age of its copy checked longest ago, as its replicator last counted them.</summary>
    public static IReadOnlyDictionary<string, (TimeSpan Period, TimeSpan OldestUnchecked)> Fixity { get; set; } =
        new Dictionary<string, (TimeSpan, TimeSpan)>();

    static readonly ObservableGauge<double> FixityOldestUnchecked = Meter.CreateObservableGauge("xtelemdb.fixity.oldest_unchecked_age",
        () => Fixity.Select(f => new Measurement<double>(f.Value.OldestUnchecked.TotalSeconds, Replica(f.Key))), "s",
        "Age of the copy read back longest ago (or made longest ago, if never read back); over fixity_period, the schedule slips");

    static readonly ObservableGauge<double> FixityPeriod = Meter.CreateObservableGauge("xtelemdb.fixity.period",
        () => Fixity.Select(f => new Measurement<double>(f.Value.Period.TotalSeconds, Replica(f.Key))), "s",
        "The replica's fixity_period: every copy is read back once within it");

    /// <summary>Each (replica, origin host) pair's backlog, counted with <see cref="Backlog"/>: which host's files a replica lacks.</summary>
    public static IReadOnlyList<ReplicaOriginBacklog> PairBacklog { get; set; } = [];

    static readonly ObservableGauge<long> PairBacklogFiles = Meter.CreateObservableGauge("xtelemdb.replica.origin_backlog_files",
        () => PairBacklog.Select(p => new Measurement<long>(p.Files, Replica(p.Replica), OriginHost(p.OriginHost))), "{file}",
        "Files of one origin host whose current version the replica lacks");

    static readonly ObservableGauge<long> PairBacklogBytes = Meter.CreateObservableGauge("xtelemdb.replica.origin_backlog",
        () => PairBacklog.Select(p => new Measurement<long>(p.Bytes, Replica(p.Replica), OriginHost(p.OriginHost))), "By",
        "Bytes of one origin host's files the replica lacks");

    /// <summary>When the inventory last counted the backlog: the backlog gauges keep their last values when a count fails.</summary>
    public static DateTimeOffset? BacklogCounted { get; set; }

    static readonly ObservableGauge<double> BacklogCountedAt = Meter.CreateObservableGauge("xtelemdb.inventory.backlog_counted_timestamp",
        () => Timestamp(BacklogCounted), "s", "Unix time the inventory last counted the replicas' backlog");

    /// <summary>Whether each replica had its marker at the last copy this process tried (ReplicaAvailability keeps it).</summary>
    public static readonly ConcurrentDictionary<string, bool> ReplicaAvailable = new(StringComparer.Ordinal);

    static readonly ObservableGauge<int> Available = Meter.CreateObservableGauge("xtelemdb.replica.available",
        () => ReplicaAvailable.Select(r => new Measurement<int>(r.Value ? 1 : 0, Replica(r.Key))), unit: null,
        "1 when the replica had its marker at the last copy this replicator tried, 0 when it was missing (a backup disk not mounted)");

    /// <summary>When the watcher last finished a full stat poll of its roots (the start-up scan included).</summary>
    public static DateTimeOffset? WatcherLastPoll { get; set; }

    /// <summary>The watcher's [watch] poll_interval, set when it starts: how old <see cref="WatcherLastPoll"/> may grow.</summary>
    public static TimeSpan? WatcherPollInterval { get; set; }

    static readonly ObservableGauge<double> LastPoll = Meter.CreateObservableGauge("xtelemdb.watcher.last_poll_timestamp",
        () => Timestamp(WatcherLastPoll), "s", "Unix time the watcher last finished a full stat poll of its roots");

    static readonly ObservableGauge<double> PollInterval = Meter.CreateObservableGauge("xtelemdb.watcher.poll_interval",
        () => Seconds(WatcherPollInterval?.TotalSeconds), "s", "The watcher's [watch] poll_interval");

    static Measurement<double>[] Timestamp(DateTimeOffset? at) => Seconds(at?.ToUnixTimeMilliseconds() / 1000.0);

    /// <summary>No measurement at all in a process without the service that sets it.</summary>
    static Measurement<double>[] Seconds(double? value) => value is { } v ? [new Measurement<double>(v)] : [];

    public static KeyValuePair<string, object?> Replica(string url) => new("replica", url);

    static KeyValuePair<string, object?> OriginHost(string host) => new("origin_host", host);
}

public sealed record ReplicaBacklog(string Url, long Files, long Bytes, TimeSpan OldestAge);

public sealed record ReplicaOriginBacklog(string Replica, string OriginHost, long Files, long Bytes);
