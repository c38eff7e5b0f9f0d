using Dapper;
using Npgsql;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Tests.Real;

/// <summary>A database as the release before host-owned replicas left it, migrated.</summary>
public sealed class MigrationTests : PipelineTest
{
    [Test]
    public async Task When_replicas_gain_hosts_Should_keep_every_true_record_and_move_misplaced_ones_to_the_host_that_holds_them()
    {
        var database = new DatabaseSettings(pipeline.Connection);
        InventoryDatabase.Migrate(database, "exao1", through: "003_seen_at.sql");
        await using (var old = new NpgsqlConnection(pipeline.Connection))
        {
            // As the old release recorded a three-host layout: every host's replicator wrote its own files into "/backup" on its own disk.
            await old.ExecuteAsync("""
                insert into replicas (url, kind) values ('/backup', 'local'), ('ssh://xtelem@popeye:2222/ceph/magao-x', 'ssh');
                insert into file_origins (origin_host, origin_path, mtime, size_bytes, observed_at)
                values ('exao1', '/opt/MagAOX/telem/a.bintel', '2026-11-01T00:00:00.123456Z', 10, now()),
                       ('exao2', '/opt/MagAOX/telem/b.bintel', '2026-11-01T00:00:01Z', 20, now()),
                       ('exao2', '/opt/MagAOX/telem/c.bintel', '2026-11-01T00:00:02Z', 30, now());
                insert into file_replicas (replica_id, origin_host, origin_path, mtime, size_bytes, replica_path, checksum, copied_at)
                select r.id, o.origin_host, o.origin_path, o.mtime, o.size_bytes, '/backup/' || o.origin_host || o.origin_path, 'xxh3:00', now()
                  from replicas r cross join file_origins o where r.kind = 'local' and o.origin_path <> '/opt/MagAOX/telem/c.bintel'
                union all
                select r.id, o.origin_host, o.origin_path, o.mtime, o.size_bytes, '/home/xtelem/ceph/magao-x/' || o.origin_host || o.origin_path, 'xxh3:00', now()
                  from replicas r cross join file_origins o where r.kind = 'ssh';
                """);
        }

        var applied = InventoryDatabase.Migrate(database, "exao1");
        Assert.That(applied, Does.Contain(InventoryDatabase.ReplicaHostsScript));

        await using var connection = new NpgsqlConnection(pipeline.Connection);
        var replicas = (await connection.QueryAsync<(string Host, string Url, string Kind, bool Enabled)>(
            "select host, url, kind, enabled from replicas order by id")).ToArray();
        Assert.That(replicas, Is.EqualTo(new[]
        {
            ("exao1", "/backup", "local", true),
            ("popeye", "ssh://xtelem@popeye:2222/ceph/magao-x", "ssh", true),
            ("exao2", "/backup", "local", false),
        }), "the local replica is the migrating host's; exao2's own /backup holds what exao2 wrote there, and waits for an operator");
        var held = (await connection.QueryAsync<(string Replica, string Host, string Path, string Checksum)>("""
            select r.host || ':' || r.url, fr.origin_host, fr.origin_path, fr.checksum
              from file_replicas fr join replicas r on r.id = fr.replica_id order by 1, 2, 3
            """)).ToArray();
        Assert.That(held, Is.EqualTo(new[]
        {
            ("exao1:/backup", "exao1", "/opt/MagAOX/telem/a.bintel", "xxh3:00"),
            ("exao2:/backup", "exao2", "/opt/MagAOX/telem/b.bintel", "xxh3:00"),
            ("popeye:ssh://xtelem@popeye:2222/ceph/magao-x", "exao1", "/opt/MagAOX/telem/a.bintel", "xxh3:00"),
            ("popeye:ssh://xtelem@popeye:2222/ceph/magao-x", "exao2", "/opt/MagAOX/telem/b.bintel", "xxh3:00"),
            ("popeye:ssh://xtelem@popeye:2222/ceph/magao-x", "exao2", "/opt/MagAOX/telem/c.bintel", "xxh3:00"),
        }));

        // Nothing truly copied is asked for again; what exao1's folder never had is.
        await using var source = InventoryDatabase.CreateDataSource(database);
        var store = new InventoryStore(source);
        var all = await store.ReplicasAsync(CancellationToken.None);
        var backlog = new Dictionary<string, long>();
        foreach (var replica in all)
            backlog[replica.Name] = (await store.BacklogSizeAsync(replica.Id, null, null, CancellationToken.None)).Files;
        Assert.That(backlog, Is.EqualTo(new Dictionary<string, long>
        {
            ["exao1:/backup"] = 2, // exao2's b and c: they were on exao2's disk, never on exao1's
            ["ssh://xtelem@popeye:2222/ceph/magao-x"] = 0,
            ["exao2:/backup"] = 0, // disabled
        }));
        Assert.That(await store.PendingResyncsAsync(CancellationToken.None), Has.Count.EqualTo(1), "the renamed queues' requests are asked for again at the inventory's start");
        Assert.That(InventoryDatabase.Migrate(database, "exao1"), Is.Empty, "migrating again changes nothing");

        // exao2's own TOML file, naming "/backup" as it did, takes its folder back; an operator's removal holds against a TOML file.
        var exao2 = await store.RegisterReplicaAsync("exao2", "/backup", "local", true, Hosting.Selection.ReplicaSelection.Everything, CancellationToken.None, fromConfiguration: true);
        Assert.That((exao2.Enabled, exao2.Changed), Is.EqualTo((true, true)));
        var exao1 = all.Single(r => r.Name == "exao1:/backup");
        Assert.That(await store.DisableReplicaAsync(exao1.Id, CancellationToken.None), Is.True);
        exao1 = await store.RegisterReplicaAsync("exao1", "/backup", "local", true, Hosting.Selection.ReplicaSelection.Everything, CancellationToken.None, fromConfiguration: true);
        Assert.That(exao1.Enabled, Is.False, "removed by an operator: stays removed");
        exao1 = await store.RegisterReplicaAsync("exao1", "/backup", "local", true, Hosting.Selection.ReplicaSelection.Everything, CancellationToken.None);
        Assert.That(exao1.Enabled, Is.True, "add_replica enables it again");
    }

    [Test]
    public async Task When_a_command_starts_on_a_database_never_migrated_current_or_newer_Should_apply_only_the_scripts_its_journal_lacks()
    {
        var database = new DatabaseSettings(pipeline.Connection);
        await using var source = InventoryDatabase.CreateDataSource(database);
        var created = await InventoryDatabase.MigrateIfBehindAsync(source, database, "exao1", CancellationToken.None);
        Assert.That(created, Does.Contain("001_inventory.sql").And.Contain(InventoryDatabase.ReplicaHostsScript));
        Assert.That(await JournalAsync(source), Is.EqualTo(created), "a database never migrated gets every script, in order");

        // A current schema costs one query through the data source: DbUp, which would connect with these settings, is not run.
        var unreachable = new DatabaseSettings("Host=127.0.0.1;Port=1;Database=nowhere;Username=nobody");
        Assert.That(await InventoryDatabase.MigrateIfBehindAsync(source, unreachable, "exao1", CancellationToken.None), Is.Empty);

        // A newer release migrated it: its journal names a script this build does not know. DbUp serves it, and so does the check.
        await using (var connection = await source.OpenConnectionAsync())
            await connection.ExecuteAsync("insert into schemaversions (scriptname, applied) values ('999_from_a_newer_release.sql', now())");
        Assert.That(await InventoryDatabase.MigrateIfBehindAsync(source, unreachable, "exao1", CancellationToken.None), Is.Empty);
        Assert.That(InventoryDatabase.Migrate(database, "exao1"), Is.Empty, "DbUp agrees: nothing of this build is missing");
    }

    [Test]
    public async Task When_an_operator_command_meets_a_schema_an_older_release_left_Should_migrate_it_before_it_reads()
    {
        var database = new DatabaseSettings(pipeline.Connection);
        InventoryDatabase.Migrate(database, "exao1", through: "003_seen_at.sql");
        await using (var old = new NpgsqlConnection(pipeline.Connection))
            await old.ExecuteAsync("insert into replicas (url, kind) values ('/backup', 'local')");
        pipeline.Configure([]);

        var (exit, output) = await pipeline.RunAsync("replica_list");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain(TestPipeline.Named("/backup")), "the replica is the host's that ran the command, as 'xtelemdb migrate' there would make it");
        Assert.That(InventoryDatabase.Migrate(database, "exao1"), Is.Empty, "the command applied every script of this build");
    }

    static async Task<string[]> JournalAsync(NpgsqlDataSource source)
    {
        await using var connection = await source.OpenConnectionAsync();
        return (await connection.QueryAsync<string>("select scriptname from schemaversions order by schemaversionsid")).ToArray();
    }
}
