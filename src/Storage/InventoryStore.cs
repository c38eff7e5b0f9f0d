using System.Runtime.CompilerServices;
using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xtelemdb.Hosting.Selection;

namespace Xtelemdb.Storage;

/// <summary>The inventory's reads and writes, over one shared data source.</summary>
public sealed class InventoryStore(NpgsqlDataSource dataSource, ILogger<InventoryStore>? logger = null)
{
    readonly GrowthStatistics statistics = new(dataSource, logger ?? NullLogger<InventoryStore>.Instance);

    public async Task UpsertOriginsAsync(IReadOnlyCollection<FileChanged> changes, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.UpsertOrigins, new
        {
            Hosts = changes.Select(c => c.Host).ToArray(),
            Paths = changes.Select(c => c.Path).ToArray(),
            Mtimes = changes.Select(c => c.Mtime).ToArray(),
            Sizes = changes.Select(c => c.Size).ToArray(),
            ObservedAts = changes.Select(c => c.ObservedAt).ToArray(),
            Deleted = changes.Select(c => c.Deleted).ToArray(),
        }, cancellationToken: cancellationToken));
        statistics.WroteOrigins(changes.Count);
    }

    /// <summary>Marks missing what a start-up scan did not report; returns how many files that was.</summary>
    public async Task<int> MarkUnseenMissingAsync(ScanCompleted scan, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(Sql.MarkUnseenMissing, new
        {
            scan.Host,
            scan.StartedAt,
            RootPatterns = scan.Roots.Select(r => EscapeLike(r.TrimEnd('/')) + "/%").ToArray(),
        }, cancellationToken: cancellationToken));
    }

    /// <summary>Replaces the skipped entries held for a watcher's roots by its latest complete list (an older one changes nothing).</summary>
    public async Task RecordSkippedAsync(FilesSkipped skipped, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // A list delayed by a retry behind a newer one is dropped: the newer one holds.
        if (await connection.ExecuteAsync(new CommandDefinition(Sql.ClaimSkippedList, new { skipped.Host, skipped.SeenAt }, transaction,
                cancellationToken: cancellationToken)) == 0)
            return;
        var paths = skipped.Files.Select(f => f.Path).ToArray();
        await connection.ExecuteAsync(new CommandDefinition(Sql.ForgetSkipped, new
        {
            skipped.Host,
            Paths = paths,
            Roots = skipped.Roots.ToArray(),
            RootPatterns = skipped.Roots.Select(r => EscapeLike(r.TrimEnd('/')) + "/%").ToArray(),
        }, transaction, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition(Sql.RecordSkipped, new
        {
            skipped.Host,
            skipped.SeenAt,
            Paths = paths,
            Reasons = skipped.Files.Select(f => f.Reason).ToArray(),
            Folders = skipped.Files.Select(f => f.Folder).ToArray(),
        }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>What the watchers skip among the files a replica selects: verify lists it.</summary>
    public async Task<IReadOnlyList<SkippedRecord>> SkippedForAsync(int replicaId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<SkippedRecord>(new CommandDefinition(Sql.SkippedFor, new { ReplicaId = replicaId }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>For these origin files, what each enabled replica (or just <paramref name="replicaId"/>) lacks.</summary>
    public Task<IReadOnlyList<ReplicaNeeded>> NeedsOfAsync(
        IEnumerable<(string Host, string Path)> origins, int? replicaId, CancellationToken cancellationToken) =>
        NeedsAsync(Sql.NeedsOf, origins, replicaId, cancellationToken);

    /// <summary>
    /// The same for origins just observed, where a replica can rename the copy of a path that just
    /// vanished (a file moved into a day folder) instead of copying: MovedFrom names that path.
    /// </summary>
    public Task<IReadOnlyList<ReplicaNeeded>> NeedsOrMovesOfAsync(IEnumerable<(string Host, string Path)> origins, CancellationToken cancellationToken) =>
        NeedsAsync(MoveSql.NeedsOrMovesOf, origins, null, cancellationToken);

    async Task<IReadOnlyList<ReplicaNeeded>> NeedsAsync(string sql,
        IEnumerable<(string Host, string Path)> origins, int? replicaId, CancellationToken cancellationToken)
    {
        var keys = origins.ToArray();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var needs = await connection.QueryAsync<ReplicaNeeded>(new CommandDefinition(sql, new
        {
            Hosts = keys.Select(k => k.Host).ToArray(),
            Paths = keys.Select(k => k.Path).ToArray(),
            ReplicaId = replicaId,
        }, cancellationToken: cancellationToken));
        return needs.AsList();
    }

    /// <summary>The backlog as a stream: a million rows never sit in memory at once.</summary>
    public async IAsyncEnumerable<ReplicaNeeded> BacklogAsync(
        int? replicaId, string? originHost, string? pathPrefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = connection.QueryUnbufferedAsync<ReplicaNeeded>(Sql.Backlog, BacklogFilter(replicaId, originHost, pathPrefix));
        await foreach (var need in rows.WithCancellation(cancellationToken))
            yield return need;
    }

    /// <summary>
    /// Records copies in one transaction and returns, for each copy in order, the requests still
    /// needed for its file: its own replica again if the origin moved on meanwhile, and every
    /// replica when the copier saw a newer version than the inventory had.
    /// </summary>
    /// <exception cref="UnknownRecordException">A copy names a replica or an origin file the inventory does not know; nothing is recorded.</exception>
    public async Task<IReadOnlyList<ReplicaNeeded>[]> RecordReplicasAsync(IReadOnlyList<ReplicaUpdated> copies, CancellationToken cancellationToken)
    {
        // The latest report of a file wins, as it would one message at a time; an earlier one changes nothing.
        var observations = copies.GroupBy(c => (c.OriginHost, c.OriginPath)).Select(g => g.MaxBy(c => c.CopiedAt)!).ToArray();
        var records = copies.GroupBy(c => (c.ReplicaId, c.OriginHost, c.OriginPath)).Select(g => g.MaxBy(c => c.CopiedAt)!).ToArray();
        // Every report of a copy renamed away counts, even one whose own record a later report supersedes.
        var moves = copies.Where(c => c.MovedFrom is not null).GroupBy(c => (c.ReplicaId, c.OriginHost, c.MovedFrom)).Select(g => g.MaxBy(c => c.CopiedAt)!).ToArray();
        // A moved file's old path is asked for again where it is back (moved back, or copied back).
        var asked = observations.Select(c => (Host: c.OriginHost, Path: c.OriginPath)).Concat(moves.Select(m => (Host: m.OriginHost, Path: m.MovedFrom!))).Distinct().ToArray();

        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.LockOrigins, new
        {
            Hosts = asked.Select(k => k.Host).ToArray(),
            Paths = asked.Select(k => k.Path).ToArray(),
        }, transaction, cancellationToken: cancellationToken));
        var moved = (await connection.QueryAsync<(string Host, string Path)>(new CommandDefinition(Sql.ObserveOriginsFromCopies, new
        {
            Hosts = observations.Select(c => c.OriginHost).ToArray(),
            Paths = observations.Select(c => c.OriginPath).ToArray(),
            Mtimes = observations.Select(c => c.Mtime).ToArray(),
            Sizes = observations.Select(c => c.Size).ToArray(),
            CopiedAts = observations.Select(c => c.CopiedAt).ToArray(),
        }, transaction, cancellationToken: cancellationToken))).ToHashSet();
        try
        {
            await connection.ExecuteAsync(new CommandDefinition(Sql.RecordReplicas, Columns(records), transaction, cancellationToken: cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            // The foreign keys check on every copy what a lookup first would cost another round trip for.
            throw new UnknownRecordException(copies.Count > 1
                ? $"one of {copies.Count} ReplicaUpdated names a replica or an origin file the inventory does not know ({e.ConstraintName})"
                : e.ConstraintName == "file_replicas_replica_id_fkey"
                    ? $"ReplicaUpdated names replica {copies[0].ReplicaId}, which is not registered"
                    : $"ReplicaUpdated names an origin file the inventory does not know: {copies[0].OriginHost}:{copies[0].OriginPath}");
        }
        if (moves.Length > 0)
            await connection.ExecuteAsync(new CommandDefinition(MoveSql.ForgetMovedCopies,
                Columns(moves.Select(m => m with { OriginPath = m.MovedFrom! }).ToArray()), transaction, cancellationToken: cancellationToken));
        // Decided from the state just written, never from what this batch changed: a redelivery asks again.
        var behind = (await connection.QueryAsync<ReplicaNeeded>(new CommandDefinition(Sql.NeedsOf, new
        {
            Hosts = asked.Select(k => k.Host).ToArray(),
            Paths = asked.Select(k => k.Path).ToArray(),
            ReplicaId = (int?)null,
        }, transaction, cancellationToken: cancellationToken))).ToLookup(n => (n.OriginHost, n.OriginPath));
        await transaction.CommitAsync(cancellationToken);
        statistics.WroteReplicas(records.Length);

        // A copier that saw a newer version than the inventory's tells every replica, not only its own.
        return copies.Select(c => (IReadOnlyList<ReplicaNeeded>)behind[(c.OriginHost, c.OriginPath)]
            .Where(n => moved.Contains((c.OriginHost, c.OriginPath)) || n.ReplicaId == c.ReplicaId)
            .Concat(c.MovedFrom is { } from ? behind[(c.OriginHost, from)].Where(n => n.ReplicaId == c.ReplicaId) : []).ToArray()).ToArray();
    }

    /// <summary>Reports of copies as one array per field, for unnest (Dapper passes only the ones a statement names).</summary>
    static object Columns(IReadOnlyCollection<ReplicaUpdated> copies) => new
    {
        ReplicaIds = copies.Select(c => c.ReplicaId).ToArray(),
        Hosts = copies.Select(c => c.OriginHost).ToArray(),
        Paths = copies.Select(c => c.OriginPath).ToArray(),
        Mtimes = copies.Select(c => c.Mtime).ToArray(),
        Sizes = copies.Select(c => c.Size).ToArray(),
        ReplicaPaths = copies.Select(c => c.ReplicaPath).ToArray(),
        Checksums = copies.Select(c => c.Checksum).ToArray(),
        CopiedAts = copies.Select(c => c.CopiedAt).ToArray(),
    };

    /// <summary>Registers the replica (host, url), or sets whether it is enabled and what it selects.</summary>
    /// <param name="fromConfiguration">A TOML file's replica: enabled = true does not undo an operator's remove_replica.</param>
    /// <param name="keepSelection">An existing replica's selection stands (a TOML file that does not own the replica).</param>
    public async Task<ReplicaRecord> RegisterReplicaAsync(string host, string url, string kind, bool enabled, ReplicaSelection selection,
        CancellationToken cancellationToken, bool fromConfiguration = false, bool keepSelection = false)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var replica = await connection.QuerySingleAsync<ReplicaRecord>(new CommandDefinition(Sql.RegisterReplica, new
        {
            Host = host, Url = url, Kind = kind, Enabled = enabled, FromConfiguration = fromConfiguration, KeepSelection = keepSelection,
            Hosts = selection.Hosts?.ToArray(), Include = selection.Include.ToArray(), Exclude = selection.Exclude.ToArray(),
            selection.IncludeRegex, selection.ExcludeRegex,
        // A new replica or selection is counted whole (migration 009's trigger): minutes at ten million files.
        }, commandTimeout: 0, cancellationToken: cancellationToken));
        statistics.RegisteredReplica();
        return replica;
    }

    /// <summary>Whether the replica selects this origin file, as the backlog decides it.</summary>
    public async Task<bool> SelectsAsync(int replicaId, string host, string path, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(Sql.ReplicaSelects, new { Id = replicaId, Host = host, Path = path }, cancellationToken: cancellationToken));
    }

    public async Task<RecordedCopy?> RecordedCopyAsync(int replicaId, string host, string path, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<RecordedCopy>(new CommandDefinition(Sql.RecordedCopy, new { Id = replicaId, Host = host, Path = path }, cancellationToken: cancellationToken));
    }

    /// <summary>The checksum recorded for a replica's copy of this version, where the copy may be moved (not found damaged); null where there is none.</summary>
    public async Task<string?> MovableChecksumAsync(int replicaId, string host, string path, Hosting.FileVersion version, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(MoveSql.MovableChecksum,
            new { Id = replicaId, Host = host, Path = path, version.Mtime, version.Size }, cancellationToken: cancellationToken));
    }

    public async Task<ReplicaRecord?> ReplicaAsync(int id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<ReplicaRecord>(new CommandDefinition(Sql.ReplicaById, new { Id = id }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<ReplicaRecord>> ReplicasAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<ReplicaRecord>(new CommandDefinition(Sql.Replicas, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>
    /// A replica as an operator names it: "exao1:/mnt/backup", an ssh:// URL, or a bare path, which
    /// is <paramref name="thisHost"/>'s folder, else the one host's that has a replica there.
    /// </summary>
    /// <exception cref="AmbiguousReplicaException">A bare path that several hosts' replicas have, none of them this host's.</exception>
    public async Task<ReplicaRecord?> FindReplicaAsync(string name, string? thisHost, CancellationToken cancellationToken)
    {
        string? host = ReplicaUrls.TrySplitHostPath(name, out var named, out var url) ? named : null;
        url = ReplicaUrls.Normalize(url);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var found = (await connection.QueryAsync<ReplicaRecord>(new CommandDefinition(
            Sql.ReplicasByUrl, new { Url = url, Host = host }, cancellationToken: cancellationToken))).AsList();
        if (found.Count <= 1)
            return found.SingleOrDefault();
        return found.FirstOrDefault(r => r.Host == thisHost)
            ?? throw new AmbiguousReplicaException($"replica \"{name}\" is a folder on several hosts: name one of {string.Join(", ", found.Select(r => r.Name))}");
    }

    /// <summary>How many present origin files the replica selects, of how many; and its hosts that have no origin file.</summary>
    public async Task<SelectionCount> SelectionCountAsync(int replicaId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleAsync<SelectionCount>(new CommandDefinition(Sql.SelectionCount, new { Id = replicaId }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<PairStatus>> PairStatusAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<PairStatus>(new CommandDefinition(Sql.PairStatus, cancellationToken: cancellationToken))).AsList();
    }

    public async Task<BacklogSize> BacklogSizeAsync(int? replicaId, string? originHost, string? pathPrefix, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleAsync<BacklogSize>(new CommandDefinition(Sql.BacklogSize,
            BacklogFilter(replicaId, originHost, pathPrefix), cancellationToken: cancellationToken));
    }

    static object BacklogFilter(int? replicaId, string? originHost, string? pathPrefix) => new
    {
        ReplicaId = replicaId,
        OriginHost = originHost,
        PathPrefix = pathPrefix,
        PathPattern = pathPrefix is null ? null : EscapeLike(pathPrefix) + "%",
    };

    /// <summary>Records why a replica's copies are not flushed (null: they are), as its replicator found.</summary>
    public async Task SetUnflushedAsync(int replicaId, string? why, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "update replicas set unflushed = @why where id = @replicaId and unflushed is distinct from @why",
            new { replicaId, why }, cancellationToken: cancellationToken));
    }

    /// <summary>Folds the backlog counts' rows of changes, which every ingest adds, into one per pair.</summary>
    public async Task CompactCountsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.CompactCounts, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<ReplicaStatus>> ReplicaStatusAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<ReplicaStatus>(new CommandDefinition(Sql.ReplicaStatus, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>Enrolls one batch of backup files in one transaction; returns (origins, replica rows) added.</summary>
    public async Task<(int Origins, int Replicas)> ImportAsync(int replicaId, IReadOnlyCollection<BackupFile> files, CancellationToken cancellationToken)
    {
        var batch = new
        {
            ReplicaId = replicaId,
            Hosts = files.Select(f => f.OriginHost).ToArray(),
            Paths = files.Select(f => f.OriginPath).ToArray(),
            Mtimes = files.Select(f => f.Mtime).ToArray(),
            Sizes = files.Select(f => f.Size).ToArray(),
            Targets = files.Select(f => f.ReplicaPath).ToArray(),
        };
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // The origin rows first: a replica row points at one.
        var origins = await connection.ExecuteAsync(new CommandDefinition(Sql.ImportOrigins, batch, transaction, cancellationToken: cancellationToken));
        var replicas = await connection.ExecuteAsync(new CommandDefinition(Sql.ImportReplicas, batch, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        statistics.WroteOrigins(origins);
        statistics.WroteReplicas(replicas);
        return (origins, replicas);
    }

    public async IAsyncEnumerable<RecordedCopy> RecordedCopiesAsync(int replicaId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await foreach (var copy in connection.QueryUnbufferedAsync<RecordedCopy>(Sql.RecordedCopies, new { ReplicaId = replicaId }).WithCancellation(cancellationToken))
            yield return copy;
    }

    public async Task<IReadOnlySet<string>> RecordedPathsAsync(int replicaId, IReadOnlyCollection<string> paths, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var found = await connection.QueryAsync<string>(new CommandDefinition(Sql.RecordedPaths,
            new { ReplicaId = replicaId, Paths = paths.ToArray() }, cancellationToken: cancellationToken));
        return found.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Requests that bring these files of a replica back to their origin's current version.</summary>
    public async Task<IReadOnlyList<ReplicaNeeded>> NeedsForCopiesAsync(int replicaId, IReadOnlyCollection<(string Host, string Path)> files, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<ReplicaNeeded>(new CommandDefinition(Sql.NeedsForCopies, new
        {
            ReplicaId = replicaId,
            Hosts = files.Select(f => f.Host).ToArray(),
            Paths = files.Select(f => f.Path).ToArray(),
        }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>Stops requests for a replica; returns false when it was disabled already.</summary>
    public async Task<bool> DisableReplicaAsync(int id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(Sql.DisableReplica, new { Id = id }, cancellationToken: cancellationToken)) > 0;
    }

    /// <summary>Replicas to back-fill whose announcement is not yet confirmed.</summary>
    /// <summary>The kept backlog of a replica against a direct computation; a full read of what it selects, for verify.</summary>
    public async Task<BacklogDrift> BacklogDriftAsync(int replicaId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleAsync<BacklogDrift>(new CommandDefinition(Sql.BacklogDrift, new { ReplicaId = replicaId },
            commandTimeout: 0, cancellationToken: cancellationToken));
    }

    /// <summary>Computes a replica's backlog and counts afresh; the pipeline's writers wait meanwhile.</summary>
    public async Task RebuildBacklogAsync(int replicaId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.RebuildBacklog, new { ReplicaId = replicaId }, transaction, commandTimeout: 0, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<ReplicaRecord>> PendingBackfillsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<ReplicaRecord>(new CommandDefinition(Sql.PendingBackfills, cancellationToken: cancellationToken))).AsList();
    }

    public async Task BackfillAnnouncedAsync(int replicaId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.BackfillAnnounced, new { Id = replicaId }, cancellationToken: cancellationToken));
    }

    /// <summary>Resyncs a migration asked for; each is deleted once its ResyncRequested is published.</summary>
    public async Task<IReadOnlyList<string>> PendingResyncsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition(Sql.PendingResyncs, cancellationToken: cancellationToken))).AsList();
    }

    public async Task ResyncDoneAsync(string reason, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.ResyncDone, new { Reason = reason }, cancellationToken: cancellationToken));
    }

    public async Task PurgeReplicaAsync(int id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.PurgeReplica, new { Id = id }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
    }

    internal static string EscapeLike(string text) =>
        text.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal);
}
