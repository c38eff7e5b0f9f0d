using Dapper;
using Npgsql;
using Xtelemdb.Hosting.Selection;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The inventory analyzes the tables it fills while they grow faster than autovacuum looks (at
/// most once a minute): the planner's idea of their size must follow them, or each list of an
/// initial sync is planned for a table of a few rows and reads the whole of it.
/// </summary>
public sealed class GrowthStatisticsTests : PipelineTest
{
    static readonly CancellationToken None = CancellationToken.None;
    const string Host = "exao1";

    [Test]
    public async Task When_lists_add_thousands_of_files_in_seconds_Should_the_planner_know_the_tables_size()
    {
        InventoryDatabase.Migrate(new DatabaseSettings(pipeline.Connection), Host);
        await using var source = NpgsqlDataSource.Create(pipeline.Connection);
        var store = new InventoryStore(source);
        await store.RegisterReplicaAsync(Host, "/backup", "local", true, ReplicaSelection.Everything, None);
        await using var db = await source.OpenConnectionAsync();
        // Autovacuum would also analyze, a minute later at the soonest: kept off, only the inventory's ANALYZE counts the rows.
        await db.ExecuteAsync("alter table file_origins set (autovacuum_enabled = false)");

        var observed = DateTime.UtcNow;
        for (var list = 0; list < 12; list++)
            await store.UpsertOriginsAsync(Enumerable.Range(list * 250, 250).Select(i => new FileChanged
            {
                Host = Host, Path = $"/data/night/{i / 100}/frame{i}.fits", Mtime = observed, Size = 1000 + i, ObservedAt = observed,
            }).ToArray(), None);

        await Eventually.True(async () => await db.QuerySingleAsync<long>(
                "select greatest(reltuples, 0)::bigint from pg_class where oid = 'file_origins'::regclass") >= 2_000,
            Eventually.Patience, "the planner's count of file_origins (ANALYZE's) to reach the 2,000 files recorded when it ran");
    }

    [Test]
    public async Task When_a_replica_is_registered_Should_the_planner_know_how_many_replicas_there_are()
    {
        InventoryDatabase.Migrate(new DatabaseSettings(pipeline.Connection), Host);
        await using var source = NpgsqlDataSource.Create(pipeline.Connection);
        var store = new InventoryStore(source);
        await using var db = await source.OpenConnectionAsync();
        // Autovacuum analyzes a table after 50 changed rows: a replica set of two would never be.
        Assert.That(await db.QuerySingleAsync<float>("select reltuples from pg_class where oid = 'replicas'::regclass"), Is.EqualTo(-1), "never analyzed before");

        await store.RegisterReplicaAsync(Host, "/backup", "local", true, ReplicaSelection.Everything, None);
        await store.RegisterReplicaAsync(Host, "/backup2", "local", true, ReplicaSelection.Everything, None);

        await Eventually.True(async () => await db.QuerySingleAsync<float>("select reltuples from pg_class where oid = 'replicas'::regclass") == 2,
            Eventually.Patience, "the planner's count of replicas (ANALYZE's) to be the 2 registered");
    }
}
