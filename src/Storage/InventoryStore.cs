using System.Runtime.CompilerServices;
using Dapper;
using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>The inventory's reads and writes, over one shared data source.</summary>
public sealed class InventoryStore(NpgsqlDataSource dataSource)
{
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

    /// <summary>For these origin files, what each enabled replica (or just <paramref name="replicaId"/>) lacks.</summary>
    public async Task<IReadOnlyList<ReplicaNeeded>> NeedsOfAsync(
        IEnumerable<(string Host, string Path)> origins, int? replicaId, CancellationToken cancellationToken)
    {
        var keys = origins.ToArray();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var needs = await connection.QueryAsync<ReplicaNeeded>(new CommandDefinition(Sql.NeedsOf, new
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
    /// Records a copy. Returns true when the copier saw a newer version of the origin than the
    /// inventory had, so the other replicas need it too.
    /// </summary>
    public async Task<bool> RecordReplicaAsync(ReplicaUpdated copy, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var originMoved = await connection.ExecuteAsync(new CommandDefinition(Sql.ObserveOriginFromCopy, copy, transaction, cancellationToken: cancellationToken)) > 0;
        try
        {
            await connection.ExecuteAsync(new CommandDefinition(Sql.RecordReplica, copy, transaction, cancellationToken: cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            // The foreign keys check on every copy what a lookup first would cost two more round trips for.
            throw new UnknownRecordException(e.ConstraintName == "file_replicas_replica_id_fkey"
                ? $"ReplicaUpdated names replica {copy.ReplicaId}, which is not registered"
                : $"ReplicaUpdated names an origin file the inventory does not know: {copy.OriginHost}:{copy.OriginPath}");
        }
        await transaction.CommitAsync(cancellationToken);
        return originMoved;
    }

    public async Task<ReplicaRecord> RegisterReplicaAsync(string url, string kind, bool enabled, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleAsync<ReplicaRecord>(new CommandDefinition(
            Sql.RegisterReplica, new { Url = url, Kind = kind, Enabled = enabled }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<ReplicaRecord>> ReplicasAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<ReplicaRecord>(new CommandDefinition(Sql.Replicas, cancellationToken: cancellationToken))).AsList();
    }

    public async Task<ReplicaRecord?> FindReplicaAsync(string url, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<ReplicaRecord>(new CommandDefinition(
            Sql.ReplicaByUrl, new { Url = url }, cancellationToken: cancellationToken));
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

    public async Task PurgeReplicaAsync(int id, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Sql.PurgeReplica, new { Id = id }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
    }

    static string EscapeLike(string text) =>
        text.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal);
}
