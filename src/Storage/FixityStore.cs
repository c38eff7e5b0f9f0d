using Dapper;
using Npgsql;

namespace Xtelemdb.Storage;

/// <summary>A replica's copies as the rolling fixity check sees them.</summary>
public sealed record FixityStanding(long Copies, DateTime? OldestChecked);

/// <summary>A replica holding the same bytes of a copy, by its record: a source a repair may read.</summary>
public sealed record RepairSource(int Id, string Url, string Kind, string Host, string ReplicaPath);

/// <summary>The rolling fixity check's reads and writes.</summary>
public sealed class FixityStore(NpgsqlDataSource dataSource)
{
    const long LockSpace = 0x7874_6678L << 32; // "xtfx": keeps these locks apart from any other advisory lock

    public async Task<FixityStanding> StandingAsync(int replicaId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleAsync<FixityStanding>(new CommandDefinition(FixitySql.Standing, new { Id = replicaId }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<RecordedCopy>> DueAsync(int replicaId, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<RecordedCopy>(new CommandDefinition(FixitySql.Due, new { Id = replicaId, Limit = limit }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>Whether the record was still of that copy (a newer copy recorded meanwhile is left alone).</summary>
    public Task<bool> MarkCheckedAsync(int replicaId, RecordedCopy copy, DateTime at, CancellationToken cancellationToken) =>
        MarkAsync(FixitySql.MarkChecked, replicaId, copy, at, cancellationToken);

    public Task<bool> ForgetAsync(int replicaId, RecordedCopy copy, CancellationToken cancellationToken) =>
        MarkAsync(FixitySql.Forget, replicaId, copy, DateTime.UtcNow, cancellationToken);

    public Task<bool> MarkDamagedAsync(int replicaId, RecordedCopy copy, DateTime at, CancellationToken cancellationToken) =>
        MarkAsync(FixitySql.MarkDamaged, replicaId, copy, at, cancellationToken);

    async Task<bool> MarkAsync(string sql, int replicaId, RecordedCopy copy, DateTime at, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(sql, new
        {
            Id = replicaId, Host = copy.OriginHost, Path = copy.OriginPath, copy.Mtime, copy.Size, copy.Checksum, At = at,
        }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task<IReadOnlyList<RepairSource>> RepairSourcesAsync(int replicaId, RecordedCopy copy, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<RepairSource>(new CommandDefinition(FixitySql.RepairSources, new
        {
            Id = replicaId, Host = copy.OriginHost, Path = copy.OriginPath, copy.Mtime, copy.Size, copy.Checksum,
        }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>
    /// The right to check a replica now, held until disposed: two replicators that both write an
    /// SSH replica do not read its copies twice. Null when another holds it.
    /// </summary>
    public async Task<IAsyncDisposable?> TryLockAsync(int replicaId, CancellationToken cancellationToken)
    {
        var key = LockSpace | (uint)replicaId;
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            if (await connection.ExecuteScalarAsync<bool>(new CommandDefinition(FixitySql.TryLock, new { Key = key }, cancellationToken: cancellationToken)))
                return new HeldLock(connection, key);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
        await connection.DisposeAsync();
        return null;
    }

    /// <summary>Unlocks before the connection goes back to the pool, which may keep its session open.</summary>
    sealed class HeldLock(NpgsqlConnection connection, long key) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await connection.ExecuteAsync(FixitySql.Unlock, new { Key = key });
            }
            finally
            {
                await connection.DisposeAsync();
            }
        }
    }
}
