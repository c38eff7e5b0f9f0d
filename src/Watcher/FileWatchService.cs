using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Watcher;

/// <summary>
/// Sends FileChanged (in FilesChanged lists) for every file under the roots: live from inotify (FileSystemWatcher),
/// once a path has been quiet for settle (or at least every max_interval while it keeps changing),
/// and from a full stat poll at start and every poll_interval, the safety net for whatever the
/// live watcher missed: events in a new folder before its watch exists, an overflow, a silent stop.
/// </summary>
public sealed class FileWatchService(XtelemdbSettings settings, IBus bus, QueueLabels labels, IHostApplicationLifetime lifetime, ILogger<FileWatchService> logger)
    : BackgroundService
{
    /// <summary>Observations per FilesChanged message; a poll sends each list as soon as it is full.</summary>
    const int PublishBatch = 250;

    /// <summary>FilesSkipped's own bound: a root of more unbackable entries than this lists the first ones.</summary>
    const int MaxSkippedListed = 100_000;
    readonly WatchedTree tree = new();
    readonly SkippedFiles skipped = new(logger);

    /// <summary>What the watcher saw under its roots and does not back up.</summary>
    public SkippedFiles Skipped => skipped;
    readonly List<FileSystemWatcher> watchers = [];
    volatile bool rescanRequested;

    /// <summary>Changes the poll found that the live watcher had missed, since start.</summary>
    public long MissedByLiveWatcher { get; private set; }

    static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(10);

    /// <summary>When the first attempt at the start-up scan began: every file it reports is observed later.</summary>
    DateTime? scanStartedAt;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var watch = settings.Watch;
        PipelineMetrics.WatcherPollInterval = watch.PollInterval;
        StartWatchers();
        // The bus starts after this service: the initial scan waits for it, or what it reports is lost.
        var started = new TaskCompletionSource();
        await using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        await using (stoppingToken.Register(() => started.TrySetCanceled(stoppingToken)))
            await started.Task;
        var tick = TimeSpan.FromTicks(Math.Clamp(watch.Settle.Ticks / 4, TimeSpan.FromMilliseconds(20).Ticks, TimeSpan.FromMilliseconds(250).Ticks));
        // The first poll is the initial scan; until one succeeds, every poll counts as initial.
        var initial = true;
        var nextPoll = DateTime.UtcNow;
        while (!stoppingToken.IsCancellationRequested)
        {
            // Ticks while paths settle; otherwise sleeps until an event or the next poll.
            var untilPoll = nextPoll - DateTime.UtcNow;
            var sleep = tree.HasPending || rescanRequested ? tick : TimeSpan.FromTicks(Math.Clamp(untilPoll.Ticks, 0, TimeSpan.TicksPerHour));
            await tree.WaitAsync(sleep, stoppingToken);
            try
            {
                if (rescanRequested)
                {
                    rescanRequested = false;
                    StartWatchers();
                    await PollAsync(initial, stoppingToken);
                }
                await PublishDueAsync(stoppingToken);
                if (DateTime.UtcNow >= nextPoll)
                {
                    await PollAsync(initial, stoppingToken);
                    initial = false;
                    nextPoll = DateTime.UtcNow + watch.PollInterval;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The broker may be restarting: what was not published stays unknown, and a poll soon finds it.
                var retry = TimeSpan.FromTicks(Math.Min(watch.PollInterval.Ticks, RetryAfterFailure.Ticks));
                logger.LogError(e, "Publishing changes failed; polling again in {Retry}", retry);
                nextPoll = DateTime.UtcNow + retry;
            }
        }
    }

    void StartWatchers()
    {
        StopWatchers();
        foreach (var root in settings.Watch.Roots)
        {
            if (!Directory.Exists(root))
            {
                logger.LogWarning("Watched root {Root} does not exist; the poll looks again every {Interval}", root, settings.Watch.PollInterval);
                continue;
            }
            var watcher = new FileSystemWatcher(root)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
                InternalBufferSize = 64 * 1024,
            };
            watcher.Created += (_, e) => tree.Touch(e.FullPath, DateTime.UtcNow);
            watcher.Changed += (_, e) => tree.Touch(e.FullPath, DateTime.UtcNow);
            watcher.Deleted += (_, e) => tree.Touch(e.FullPath, DateTime.UtcNow);
            watcher.Renamed += (_, e) =>
            {
                tree.Touch(e.OldFullPath, DateTime.UtcNow);
                tree.Touch(e.FullPath, DateTime.UtcNow);
            };
            watcher.Error += (_, e) =>
            {
                logger.LogWarning(e.GetException(), "The live watcher of {Root} failed (an overflow loses events); restarting it and rescanning", root);
                rescanRequested = true;
                tree.Signal();
            };
            watcher.EnableRaisingEvents = true;
            watchers.Add(watcher);
        }
    }

    void StopWatchers()
    {
        foreach (var watcher in watchers)
            watcher.Dispose();
        watchers.Clear();
    }

    /// <summary>Stats the paths that settled and publishes those whose version moved; a new folder is scanned whole.</summary>
    async Task PublishDueAsync(CancellationToken cancellationToken)
    {
        var due = tree.TakeDue(DateTime.UtcNow, settings.Watch.Settle, settings.Watch.MaxInterval);
        if (due.Count == 0)
            return;
        var changes = new List<(string Path, FileVersion? Version)>();
        foreach (var path in due)
        {
            var root = settings.Watch.Roots.FirstOrDefault(r => path.StartsWith(r + "/", StringComparison.Ordinal));
            if (root is null || !TreeScan.NoLinkBetween(root, path))
                continue;
            if (FileVersion.Of(path) is { } version && (version.Size > 0 || skipped.IsRegular(path)))
            {
                if (tree.Differs(path, version))
                    changes.Add((path, version));
            }
            else if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null)
            {
                // A file replaced by a folder of the same name: the file is gone.
                if (tree.IsKnown(path))
                    changes.Add((path, null));
                // A folder created or moved in: its files may predate the watch on it.
                changes.AddRange(TreeScan.Files(path, skipped).Where(f => tree.Differs(f.Path, f.Version)).Select(f => (f.Path, (FileVersion?)f.Version)));
            }
            else if (tree.IsKnown(path))
            {
                changes.Add((path, null));
            }
            // Otherwise it vanished between event and stat, before anyone saw it: nothing to say.
        }
        await PublishAsync(changes, "live", cancellationToken);
    }

    async Task PollAsync(bool initial, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        if (initial)
            scanStartedAt ??= started;
        var pollGeneration = tree.BeginPoll();
        skipped.BeginPoll();
        var changes = new List<(string Path, FileVersion? Version)>();
        long files = 0, missed = 0;
        var existing = settings.Watch.Roots.Where(Directory.Exists).ToArray();
        // A root it may not read is reported, and its files are neither listed nor marked missing.
        var present = existing.Where(skipped.Readable).ToArray();
        foreach (var root in present)
        {
            foreach (var (path, version) in TreeScan.Files(root, skipped))
            {
                files++;
                var news = tree.Seen(path, pollGeneration, version);
                // The start-up scan reports every file, even one the live watcher published just
                // before it: ScanCompleted marks missing whatever was not seen since the scan began.
                if (!initial && !news)
                    continue;
                changes.Add((path, version));
                missed++;
                if (changes.Count >= PublishBatch)
                {
                    await PublishAsync(changes, initial ? "scan" : "poll", cancellationToken);
                    changes.Clear();
                }
            }
        }
        foreach (var gone in tree.NotSeenSince(pollGeneration, present))
        {
            changes.Add((gone, null));
            missed++;
        }
        await PublishAsync(changes, initial ? "scan" : "poll", cancellationToken);
        tree.Compact();
        // A poll allocates per file and then the watcher idles for minutes: give the garbage's
        // memory back now, or a million-file poll keeps 100 MB more resident than the tree needs.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        // Every change the poll found is published: a watcher whose polls stop (a hung mount, a broker down) lets this age.
        PipelineMetrics.WatcherLastPoll = DateTimeOffset.UtcNow;

        if (initial)
        {
            logger.LogInformation("Initial scan of {Roots}: {Files} files in {Elapsed}", string.Join(", ", present), files, DateTime.UtcNow - started);
            // Every present file is reported now: what the inventory holds beyond them was deleted while nobody watched.
            var scan = new ScanCompleted { Host = settings.Host, Roots = present, StartedAt = scanStartedAt!.Value };
            await labels.SendAsync(bus, Queues.FileChanged, [scan], "ScanCompleted", cancellationToken);
            await SendSkippedAsync(existing, started, cancellationToken);
            return;
        }
        await SendSkippedAsync(existing, started, cancellationToken);
        MissedByLiveWatcher += missed;
        logger.Log(missed > 0 ? LogLevel.Warning : LogLevel.Information,
            "Poll: {Files} files in {Elapsed}; {Missed} changes the live watcher had missed", files, DateTime.UtcNow - started, missed);
    }

    /// <summary>
    /// A list the inventory could not record, past its retries: those of this host's files that
    /// were not reported again since are reported once they settle, as if the live watcher had
    /// seen them change. A cause that persists faults them again, one list per inventory retry window.
    /// </summary>
    public void Recheck(IEnumerable<FileChanged> files, string reason)
    {
        var again = 0;
        foreach (var file in files.Where(f => f.Host == settings.Host))
        {
            if (tree.Forget(file.Path, file.Deleted ? null : new FileVersion(file.Mtime, file.Size)))
            {
                tree.Touch(file.Path, DateTime.UtcNow);
                again++;
            }
        }
        if (again > 0)
            logger.LogWarning("The inventory could not record {Count} of this host's observations ({Reason}); reporting them again", again, reason);
    }

    /// <summary>
    /// Files the inventory's database refuses for good (a path too long for its index); it recorded
    /// the rest of their list. Listed with what the watcher does not back up from the next poll on,
    /// and not reported again until they change: reporting them would only be refused again.
    /// </summary>
    public void Refused(FilesRefused refused)
    {
        if (refused.Host != settings.Host)
            return;
        foreach (var file in refused.Files)
            skipped.Refused(file);
    }

    /// <summary>The poll's complete list of what is not backed up, when it changed: verify lists it.</summary>
    /// <remarks>After the poll's own messages, and never its undoing: a list that cannot go is sent by a later poll.</remarks>
    async Task SendSkippedAsync(IReadOnlyList<string> roots, DateTime seenAt, CancellationToken cancellationToken)
    {
        if (roots.Count == 0 || skipped.Changed() is not { } files)
            return;
        if (files.Count > MaxSkippedListed)
        {
            logger.LogWarning("{Count} entries under {Roots} are not backed up; the first {Listed} are listed for verify", files.Count, string.Join(", ", roots), MaxSkippedListed);
            files = [.. files.Take(MaxSkippedListed)];
        }
        try
        {
            var message = new FilesSkipped { Host = settings.Host, Roots = roots, Files = files, SeenAt = seenAt };
            await labels.SendAsync(bus, Queues.FileChanged, [message], "FilesSkipped", cancellationToken);
            skipped.Sent();
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("The list of entries not backed up was not sent ({Error}); the next poll sends it", e.Message);
        }
    }

    /// <param name="source">How the changes were found, for the metrics: live, scan or poll.</param>
    async Task PublishAsync(IReadOnlyList<(string Path, FileVersion? Version)> changes, string source, CancellationToken cancellationToken)
    {
        if (changes.Count == 0)
            return;
        var observedAt = DateTime.UtcNow;
        var lists = changes.Chunk(PublishBatch).Select(chunk => new FilesChanged
        {
            Files = chunk.Select(c => new FileChanged
            {
                Host = settings.Host,
                Path = c.Path,
                Mtime = c.Version?.Mtime ?? default,
                Size = c.Version?.Size ?? 0,
                ObservedAt = observedAt,
                Deleted = c.Version is null,
            }).ToArray(),
        }).ToArray();
        // Before the send: the inventory may refuse the path again before the send returns.
        foreach (var (path, _) in changes)
            skipped.Reported(path);
        try
        {
            await labels.SendAsync(bus, Queues.FileChanged, lists, $"{changes.Count} FileChanged", cancellationToken);
        }
        catch
        {
            // A broker killed between storing the lists and confirming them delivers them after its
            // restart: each file they announced may be in the inventory now, so its deletion must
            // still be reported, and the next poll sends its version again.
            foreach (var (path, version) in changes)
                if (version is not null)
                    tree.MaybePublished(path);
            throw;
        }
        // Known only once published: a failed publish leaves the change for the next poll to find.
        foreach (var (path, version) in changes)
            tree.Published(path, version);
        PipelineMetrics.WatcherChanges.Add(changes.Count, new KeyValuePair<string, object?>("source", source));
    }

    public override void Dispose()
    {
        StopWatchers();
        base.Dispose();
    }
}
