using Dapper;
using Npgsql;
using Xtelemdb.Hosting.Selection;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The backlog and counts the database keeps (migration 009) against a direct count: every origin
/// joined with every copy, as replica_list counted before. After each kind of change the two agree.
/// </summary>
public sealed class ReplicaBacklogTests : PipelineTest
{
    static readonly DateTime T0 = new(2026, 11, 27, 1, 0, 0, DateTimeKind.Utc);
    static readonly CancellationToken None = CancellationToken.None;
    NpgsqlDataSource source = null!;
    InventoryStore store = null!;

    [SetUp]
    public void Open()
    {
        source = NpgsqlDataSource.Create(pipeline.Connection);
        store = new InventoryStore(source);
    }

    [TearDown]
    public async Task CloseAsync() => await source.DisposeAsync();

    /// <summary>The statements of the release before migration 009: every figure counted from the origins and copies themselves.</summary>
    const string Selects = """
        (r.hosts is null or o.origin_host = any(r.hosts))
        and (r.include_regex is null or o.origin_path ~ r.include_regex)
        and (r.exclude_regex is null or o.origin_path !~ r.exclude_regex)
        """;

    const string Behind = "(fr.replica_id is null or fr.mtime <> o.mtime or fr.size_bytes <> o.size_bytes)";

    const string DirectStatus = $"""
        select r.id as Id, count(o.origin_path) filter (where not {Behind}) as InSync, count(o.origin_path) filter (where {Behind}) as Behind,
               coalesce(sum(o.size_bytes) filter (where {Behind}), 0)::bigint as Bytes, min(o.mtime) filter (where {Behind}) as Oldest,
               (select max(copied_at) from file_replicas last where last.replica_id = r.id) as LastCopy
          from replicas r
          left join file_origins o on o.missing_since is null and {Selects}
          left join file_replicas fr on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
         group by r.id order by r.id
        """;

    const string DirectPairs = $"""
        select r.id as ReplicaId, o.origin_host as OriginHost, count(*) filter (where {Behind}) as FilesBehind,
               coalesce(sum(o.size_bytes) filter (where {Behind}), 0)::bigint as BytesBehind
          from replicas r
          join file_origins o on o.missing_since is null and {Selects}
          left join file_replicas fr on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
         where r.enabled group by r.id, o.origin_host order by r.id, o.origin_host
        """;

    const string DirectBacklog = $"""
        select r.id, o.origin_host, o.origin_path, o.mtime, o.size_bytes
          from file_origins o join replicas r on r.enabled
          left join file_replicas fr on fr.replica_id = r.id and fr.origin_host = o.origin_host and fr.origin_path = o.origin_path
         where o.missing_since is null and {Selects} and {Behind}
         order by 1, 2, 3
        """;

    /// <summary>replica_list's figures, the pairs', the backlog sizes and the backlog a resync streams, each equal to the direct count.</summary>
    async Task AssertExactAsync(string after)
    {
        await using var connection = await source.OpenConnectionAsync();
        var direct = (await connection.QueryAsync<(int Id, long InSync, long Behind, long Bytes, DateTime? Oldest, DateTime? LastCopy)>(DirectStatus)).ToArray();
        var kept = (await store.ReplicaStatusAsync(None)).Select(r => (r.Id, r.FilesInSync, r.FilesBehind, r.BytesBehind, r.OldestBehind, r.LastCopy)).ToArray();
        Assert.That(kept, Is.EqualTo(direct), $"replica_list after {after}");
        foreach (var (id, _, _, _, _, _) in direct)
            Assert.That(await store.BacklogDriftAsync(id, None), Is.EqualTo(new BacklogDrift(0, 0, false)), $"verify's check of replica {id} after {after}");
        Assert.That(await store.PairStatusAsync(None),
            Is.EqualTo((await connection.QueryAsync<PairStatus>(DirectPairs)).ToArray()), $"the pairs after {after}");

        var backlog = (await connection.QueryAsync<(int Replica, string Host, string Path, DateTime Mtime, long Size)>(DirectBacklog)).ToArray();
        var streamed = new List<(int, string, string, DateTime, long)>();
        await foreach (var need in store.BacklogAsync(null, null, null, None))
            streamed.Add((need.ReplicaId, need.OriginHost, need.OriginPath, need.Mtime, need.Size));
        Assert.That(streamed.OrderBy(n => n.Item1).ThenBy(n => n.Item2, StringComparer.Ordinal).ThenBy(n => n.Item3, StringComparer.Ordinal),
            Is.EqualTo(backlog.OrderBy(n => n.Replica).ThenBy(n => n.Host, StringComparer.Ordinal).ThenBy(n => n.Path, StringComparer.Ordinal)), $"the backlog a resync sends after {after}");
        foreach (var replica in direct.Select(d => d.Id).Cast<int?>().Append(null))
            foreach (var (host, prefix) in new (string?, string?)[] { (null, null), ("exao2", null), (null, "/opt/MagAOX/telem/"), ("exao1", "/opt/MagAOX/rawimages/camwfs/") })
            {
                var expected = backlog.Where(b => (replica is null || b.Replica == replica) && (host is null || b.Host == host) && (prefix is null || b.Path.StartsWith(prefix, StringComparison.Ordinal))).ToArray();
                Assert.That(await store.BacklogSizeAsync(replica, host, prefix, None), Is.EqualTo(new BacklogSize(expected.Length, expected.Sum(b => b.Size))),
                    $"the backlog of replica {replica}, host {host}, prefix {prefix} after {after}");
            }
    }

    static FileChanged Seen(string host, string path, int version, int observedMinute, bool deleted = false) => new()
    {
        Host = host, Path = path, Mtime = T0.AddSeconds(version).AddTicks(1234567), Size = 1000L * version, ObservedAt = T0.AddMinutes(observedMinute), Deleted = deleted,
    };

    static ReplicaUpdated Copied(int replica, string host, string path, int version, int copiedMinute, string? movedFrom = null) => new()
    {
        ReplicaId = replica, OriginHost = host, OriginPath = path, Mtime = T0.AddSeconds(version).AddTicks(1234567), Size = 1000L * version,
        ReplicaPath = "/backup/" + host + path, Checksum = $"xxh3:{version:x16}", CopiedAt = T0.AddMinutes(copiedMinute), MovedFrom = movedFrom,
    };

    static readonly string[] Paths =
    [
        "/opt/MagAOX/telem/tweeterSpeck/tweeterSpeck_20261127010000000000000.bintel",
        "/opt/MagAOX/telem/camwfs/camwfs_20261127010000000000000.bintel",
        "/opt/MagAOX/rawimages/camwfs/camwfs_20261127010000000000000.xrif",
        "/opt/MagAOX/rawimages/camwfs/camwfs_20261127010002300000000.xrif",
        "/opt/MagAOX/logs/observers/observers_20261127010000000000000.binlog",
        "/opt/MagAOX/logs/observers/notes.tmp",
    ];

    [Test]
    public async Task When_files_copies_selections_and_replicas_change_Should_show_what_a_direct_count_shows()
    {
        InventoryDatabase.Migrate(new DatabaseSettings(pipeline.Connection), "exao1");
        var backup = (await store.RegisterReplicaAsync("exao1", "/backup", "local", true, ReplicaSelection.Everything, None)).Id;
        var offsite = (await store.RegisterReplicaAsync("popeye", "ssh://popeye/ceph/magao-x", "ssh", true,
            new ReplicaSelection(["exao1", "exao2"], ["/opt/MagAOX/telem/**", "/opt/MagAOX/logs/**"], ["*.tmp"]), None)).Id;
        await AssertExactAsync("registering two replicas on an empty inventory");

        string[] hosts = ["exao1", "exao2", "exao3"];
        var files = hosts.SelectMany(h => Paths.Select(p => (Host: h, Path: p))).ToArray();
        await store.UpsertOriginsAsync(files.Select(f => Seen(f.Host, f.Path, 1, 1)).ToArray(), None);
        await AssertExactAsync("new files");

        await store.RecordReplicasAsync(files.Where((_, i) => i % 2 == 0).Select(f => Copied(backup, f.Host, f.Path, 1, 2))
            .Concat(files.Where((f, i) => i % 3 == 0 && f.Host != "exao3").Select(f => Copied(offsite, f.Host, f.Path, 1, 2))).ToArray(), None);
        await AssertExactAsync("copies recorded");

        // Telemetry grows; a copy of the old version is recorded late, then one of the new.
        var telemetry = files.Where(f => f.Path.EndsWith(".bintel", StringComparison.Ordinal)).ToArray();
        await store.UpsertOriginsAsync(telemetry.Select(f => Seen(f.Host, f.Path, 2, 3)).ToArray(), None);
        await AssertExactAsync("new versions");
        await store.RecordReplicasAsync(telemetry.Select(f => Copied(backup, f.Host, f.Path, 1, 4)).ToArray(), None);
        await AssertExactAsync("copies of the old version");
        await store.RecordReplicasAsync(telemetry.Take(2).Select(f => Copied(backup, f.Host, f.Path, 2, 5)).ToArray(), None);
        // A copier that saw a newer version than the inventory moves the origin on (for every replica).
        await store.RecordReplicasAsync([Copied(offsite, telemetry[3].Host, telemetry[3].Path, 3, 5)], None);
        await AssertExactAsync("copies of the new version, and one newer than the origin");

        // Deleted, seen again unchanged, back again; a start-up scan that missed some.
        var logs = files.Where(f => f.Path.Contains("/logs/", StringComparison.Ordinal)).ToArray();
        await store.UpsertOriginsAsync(logs.Select(f => Seen(f.Host, f.Path, 1, 6, deleted: true)).ToArray(), None);
        await AssertExactAsync("files deleted");
        await store.UpsertOriginsAsync(logs.Take(2).Select(f => Seen(f.Host, f.Path, 1, 7)).ToArray(), None);
        await store.UpsertOriginsAsync(files.Where(f => f.Host == "exao3").Select(f => Seen(f.Host, f.Path, 2, 7)).ToArray(), None);
        await AssertExactAsync("files back, and seen again");
        await store.MarkUnseenMissingAsync(new ScanCompleted { Host = "exao3", Roots = ["/opt/MagAOX/rawimages"], StartedAt = T0.AddMinutes(8) }, None);
        await AssertExactAsync("a start-up scan's unseen files marked missing");

        // A move into a day folder: the copy is renamed, the old path's record forgotten.
        var (host, old) = (files[2].Host, files[2].Path);
        var moved = old.Replace("/camwfs/", "/camwfs/2026_11_27/", StringComparison.Ordinal);
        await store.UpsertOriginsAsync([Seen(host, old, 1, 9, deleted: true), Seen(host, moved, 1, 9)], None);
        await AssertExactAsync("a file moved on its origin");
        await store.RecordReplicasAsync([Copied(backup, host, moved, 1, 10, movedFrom: old)], None);
        await AssertExactAsync("the move's rename reported");

        // The offsite replica selects otherwise; the backup is removed; an old backup is imported.
        await store.RegisterReplicaAsync("popeye", "ssh://popeye/ceph/magao-x", "ssh", true, new ReplicaSelection(["exao2", "exao3"], ["/opt/MagAOX/rawimages/**"], []), None);
        await AssertExactAsync("a selection changed");
        Assert.That(await store.DisableReplicaAsync(backup, None), Is.True);
        await AssertExactAsync("a replica removed");
        var imported = (await store.RegisterReplicaAsync("exao1", "/old", "local", true, ReplicaSelection.Everything, None)).Id;
        await store.ImportAsync(imported, [new BackupFile("exao4", "/opt/MagAOX/telem/x/x_1.bintel", T0, 5, "/old/exao4/opt/MagAOX/telem/x/x_1.bintel"),
            new BackupFile(files[0].Host, files[0].Path, T0, 7, "/old/" + files[0].Host + files[0].Path)], None);
        await AssertExactAsync("a backup imported");

        await store.CompactCountsAsync(None);
        await AssertExactAsync("the counts compacted");
        await store.PurgeReplicaAsync(offsite, None);
        await AssertExactAsync("a replica purged");
        await using var connection = await source.OpenConnectionAsync();
        Assert.That(await connection.ExecuteScalarAsync<long>("select count(*) from replica_backlog where replica_id = @offsite", new { offsite })
            + await connection.ExecuteScalarAsync<long>("select count(*) from replica_counts where replica_id = @offsite", new { offsite }), Is.Zero,
            "a purged replica's backlog and counts go with it");
    }

    [Test]
    public async Task When_the_kept_backlog_is_damaged_Should_verify_find_each_kind_and_a_rebuild_mend_it()
    {
        InventoryDatabase.Migrate(new DatabaseSettings(pipeline.Connection), "exao1");
        var backup = (await store.RegisterReplicaAsync("exao1", "/backup", "local", true, ReplicaSelection.Everything, None)).Id;
        var files = Paths.Select(p => (Host: "exao1", Path: p)).ToArray();
        await store.UpsertOriginsAsync(files.Select(f => Seen(f.Host, f.Path, 1, 1)).ToArray(), None);
        await store.RecordReplicasAsync(files.Take(2).Select(f => Copied(backup, f.Host, f.Path, 1, 2)).ToArray(), None);
        await AssertExactAsync("files and some copies");

        // What a bug in the triggers, or a hand's edit, could leave: a file behind missing from the backlog,
        // a row for a file in sync, counts that no longer add up.
        await using (var connection = await source.OpenConnectionAsync())
        {
            await connection.ExecuteAsync("delete from replica_backlog where replica_id = @backup and origin_path = @Path", new { backup, files[4].Path });
            await connection.ExecuteAsync("insert into replica_backlog select replica_id, origin_host, origin_path, mtime, size_bytes from file_replicas where replica_id = @backup and origin_path = @Path",
                new { backup, files[0].Path });
            await connection.ExecuteAsync("insert into replica_counts (replica_id, origin_host, selected) values (@backup, 'exao1', 1)", new { backup });
        }
        Assert.That(await store.BacklogDriftAsync(backup, None), Is.EqualTo(new BacklogDrift(Lacking: 1, Wrong: 1, CountsOff: true)));

        await store.RebuildBacklogAsync(backup, None);
        await AssertExactAsync("the backlog computed afresh");
    }

    [Test]
    public async Task When_files_and_copies_of_the_same_files_change_at_once_Should_still_count_exactly()
    {
        InventoryDatabase.Migrate(new DatabaseSettings(pipeline.Connection), "exao1");
        int[] replicas =
        [
            (await store.RegisterReplicaAsync("exao1", "/backup", "local", true, ReplicaSelection.Everything, None)).Id,
            (await store.RegisterReplicaAsync("popeye", "ssh://popeye/ceph", "ssh", true, new ReplicaSelection(null, ["/opt/MagAOX/telem/**"], []), None)).Id,
        ];
        var files = Enumerable.Range(0, 40).Select(i => (Host: $"exao{i % 2 + 1}", Path: $"{Paths[i % Paths.Length]}.{i}")).ToArray();
        await store.UpsertOriginsAsync(files.Select(f => Seen(f.Host, f.Path, 0, 0)).ToArray(), None);
        // Writers as the inventory runs them: lists of observations beside groups of copies of the same files,
        // every version recorded by one while the other moves it on; deadlocks are retried, as InventoryRetry does.
        var writers = Enumerable.Range(0, 6).Select(writer => Task.Run(async () =>
        {
            var random = new Random(writer);
            for (var round = 1; round <= 25; round++)
            {
                var some = files.Where(_ => random.Next(3) == 0).ToArray();
                await RetriedAsync(writer % 2 == 0
                    ? () => store.UpsertOriginsAsync(some.Select(f => Seen(f.Host, f.Path, round, round * 10 + writer, deleted: round % 7 == 0))
                        .GroupBy(s => (s.Host, s.Path)).Select(g => g.First()).OrderBy(s => s.Host, StringComparer.Ordinal).ThenBy(s => s.Path, StringComparer.Ordinal).ToArray(), None)
                    : () => store.RecordReplicasAsync(some.Select(f => Copied(replicas[random.Next(2)], f.Host, f.Path, round - random.Next(2), round * 10 + writer)).ToArray(), None));
            }
        })).ToArray();
        await Task.WhenAll(writers);
        await AssertExactAsync("six writers at once");
    }

    static async Task RetriedAsync(Func<Task> write)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await write();
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 20)
            {
            }
        }
    }

    [Test]
    public async Task When_a_database_full_of_files_and_copies_is_migrated_Should_fill_in_the_backlog_as_counted_before()
    {
        var database = new DatabaseSettings(pipeline.Connection);
        InventoryDatabase.Migrate(database, "exao1", through: "008_moved_files.sql");
        await using (var old = await source.OpenConnectionAsync())
        {
            // As the release before left it: 30,000 files of three hosts, one replica selecting part of them, copies of most at various versions.
            await old.ExecuteAsync("""
                insert into replicas (url, kind, host, hosts, include, exclude, include_regex, exclude_regex)
                values ('/backup', 'local', 'exao1', null, '{}', '{}', null, null),
                       ('ssh://popeye/ceph', 'ssh', 'popeye', '{exao1,exao2}', '{/opt/MagAOX/telem/**}', '{*.tmp}', '^/opt/MagAOX/telem/.*$', '(^|/)[^/]*\.tmp$');
                insert into file_origins (origin_host, origin_path, mtime, size_bytes, observed_at, missing_since)
                select 'exao' || (i % 3 + 1), '/opt/MagAOX/' || (array['telem', 'rawimages/camwfs', 'logs'])[i % 3 + 1] || '/2026_11_' || (i % 28 + 1) || '/f' || i || (case when i % 50 = 0 then '.tmp' else '.bin' end),
                       timestamptz '2026-11-01' + i * interval '1 second', i * 10, now(), case when i % 17 = 0 then now() end
                  from generate_series(1, 30000) i;
                insert into file_replicas (replica_id, origin_host, origin_path, mtime, size_bytes, replica_path, copied_at)
                select r.id, o.origin_host, o.origin_path, o.mtime, o.size_bytes + (case when (i + r.id) % 11 = 0 then 1 else 0 end), 'x', now() - i * interval '1 second'
                  from replicas r, (select o.*, row_number() over (order by origin_path) i from file_origins o) o
                 where (o.i + r.id) % 5 <> 0;
                """);
        }
        Assert.That(InventoryDatabase.Migrate(database, "exao1"), Is.EqualTo(new[] { "009_replica_backlog.sql", "010_skipped_long_paths.sql" }));
        await using var connection = await source.OpenConnectionAsync();
        Assert.That(await connection.ExecuteScalarAsync<long>("select count(*) from replica_backlog"), Is.GreaterThan(5000), "a backlog to fill in");
        await AssertExactAsync("the migration");
        await store.UpsertOriginsAsync([Seen("exao1", "/opt/MagAOX/telem/2026_11_1/f3.bin", 9, 1)], None);
        await AssertExactAsync("the migration and a new version");
    }
}
