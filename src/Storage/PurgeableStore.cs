using System.Runtime.CompilerServices;
using Dapper;
using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>Which origin files purgeable looks at: one host, a folder (or a file), older than a time; how many copies it asks for.</summary>
/// <param name="PathPrefix">A folder or a file: "/opt/MagAOX/rawimages" holds "/opt/MagAOX/rawimages/a", never "/opt/MagAOX/rawimages2/a".</param>
/// <param name="Before">Only origins whose mtime is earlier.</param>
/// <param name="Offsite">How many of the copies must be on an SSH replica of another host than the origin.</param>
public sealed record PurgeCriteria(string? OriginHost, string? PathPrefix, DateTime Before, int Copies, int Offsite);

/// <summary>
/// An origin file the replicas hold at its current version, with the replicas whose copies count
/// and their checksums, in the same order. <see cref="Conflict"/>: those checksums disagree.
/// </summary>
public sealed record PurgeCandidate
{
    public required string OriginHost { get; init; }
    public required string OriginPath { get; init; }
    /// <summary>The file's parent folder ("/" for a file at the root).</summary>
    public required string Folder { get; init; }
    public DateTime Mtime { get; init; }
    public long Size { get; init; }
    public bool Conflict { get; init; }
    public int[] ReplicaIds { get; init; } = [];
    public string[] Checksums { get; init; } = [];

    /// <summary>Each counted copy's replica and checksum, by replica id.</summary>
    public IEnumerable<(int ReplicaId, string Checksum)> Copies => ReplicaIds.Zip(Checksums).OrderBy(c => c.First);
}

/// <summary>What the replicas hold safely enough for the instrument to delete its own copy; never deletes anything.</summary>
public sealed class PurgeableStore(NpgsqlDataSource dataSource)
{
    /// <summary>A sort of millions of rows may take longer than Npgsql's 30 s before its first row comes.</summary>
    const int ListingTimeoutSeconds = 30 * 60;

    /// <summary>
    /// The purgeable files, ordered by host and folder, then the conflicts; a stream, so that a
    /// million rows never sit in memory at once.
    /// </summary>
    public async IAsyncEnumerable<PurgeCandidate> CandidatesAsync(PurgeCriteria criteria, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // A folder boundary: the prefix itself, or what lies below it; never a sibling that merely starts with its name.
        var prefix = criteria.PathPrefix?.TrimEnd('/');
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = connection.QueryUnbufferedAsync<PurgeCandidate>(PurgeableSql.Candidates, new
        {
            criteria.OriginHost,
            PathPrefix = prefix,
            UnderPrefix = prefix is null ? null : InventoryStore.EscapeLike(prefix) + "/%",
            criteria.Before,
            criteria.Copies,
            criteria.Offsite,
        }, commandTimeout: ListingTimeoutSeconds);
        await foreach (var candidate in rows.WithCancellation(cancellationToken))
            yield return candidate;
    }

    /// <summary>Whether any origin file of this host is known, present or missing.</summary>
    public async Task<bool> KnowsHostAsync(string host, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(PurgeableSql.KnowsHost, new { Host = host }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<string>> OriginHostsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<string>(new CommandDefinition(PurgeableSql.OriginHosts, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>
    /// Records the checksums verify read from copies recorded without one (imported), each where the
    /// record is still of the version read; returns how many were recorded. From then on those copies count.
    /// </summary>
    /// <param name="read">The copies as recorded, each with the checksum read from it.</param>
    public async Task<int> RecordChecksumsAsync(int replicaId, IReadOnlyCollection<RecordedCopy> read, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(PurgeableSql.RecordChecksums, new
        {
            ReplicaId = replicaId,
            Hosts = read.Select(c => c.OriginHost).ToArray(),
            Paths = read.Select(c => c.OriginPath).ToArray(),
            Mtimes = read.Select(c => c.Mtime).ToArray(),
            Sizes = read.Select(c => c.Size).ToArray(),
            ReplicaPaths = read.Select(c => c.ReplicaPath).ToArray(),
            Checksums = read.Select(c => c.Checksum).ToArray(),
        }, cancellationToken: cancellationToken));
    }
}
