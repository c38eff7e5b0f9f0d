using Dapper;
using Npgsql;
using Xtelemdb.Hosting.Selection;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// A file written and soon deleted (or replaced by a folder): the watcher's two lists reach the
/// inventory's database in either order, or at once. The file must end missing either way.
/// </summary>
public sealed class OriginRaceTests : PipelineTest
{
    static readonly DateTime T0 = new(2026, 11, 27, 1, 0, 0, DateTimeKind.Utc);
    static readonly CancellationToken None = CancellationToken.None;
    const string Host = "exao1";
    const string Path = "/opt/MagAOX/telem/short.bintel";
    NpgsqlDataSource source = null!;
    InventoryStore store = null!;

    int replica;

    [SetUp]
    public async Task OpenAsync()
    {
        InventoryDatabase.Migrate(new DatabaseSettings(pipeline.Connection), Host);
        source = NpgsqlDataSource.Create(pipeline.Connection);
        store = new InventoryStore(source);
        replica = (await store.RegisterReplicaAsync(Host, "/backup", "local", true, ReplicaSelection.Everything, None)).Id;
    }

    /// <summary>The backlog and counts the database keeps, against a direct count: a row missing from the start adds nothing to either.</summary>
    async Task AssertNoDriftAsync() => Assert.That((await store.BacklogDriftAsync(replica, None)).None, Is.True, "the kept backlog and counts are exact");

    [TearDown]
    public async Task CloseAsync() => await source.DisposeAsync();

    static FileChanged Seen(int observedSecond) => new()
    {
        Host = Host, Path = Path, Mtime = T0.AddTicks(1234567), Size = 4116, ObservedAt = T0.AddMinutes(10).AddSeconds(observedSecond),
    };

    /// <summary>As the watcher reports a deletion: no version.</summary>
    static FileChanged Gone(int observedSecond) => new() { Host = Host, Path = Path, ObservedAt = T0.AddMinutes(10).AddSeconds(observedSecond), Deleted = true };

    async Task<DateTime?> MissingSinceAsync()
    {
        await using var db = await source.OpenConnectionAsync();
        return await db.QuerySingleAsync<DateTime?>("select missing_since from file_origins where origin_host = @Host and origin_path = @Path", new { Host, Path });
    }

    [Test]
    public async Task When_a_deletion_is_recorded_before_the_file_was_Should_the_file_stay_missing()
    {
        await store.UpsertOriginsAsync([Gone(observedSecond: 40)], None);
        await store.UpsertOriginsAsync([Seen(observedSecond: 30)], None); // observed before the deletion, recorded after it

        Assert.That(await MissingSinceAsync(), Is.EqualTo(Gone(40).ObservedAt), "the earlier observation does not bring the file back");
        Assert.That((await store.ReplicaStatusAsync(None)).Single().FilesBehind, Is.Zero, "no replica lacks it");
        await AssertNoDriftAsync();

        await store.UpsertOriginsAsync([Seen(observedSecond: 50)], None);
        Assert.That(await MissingSinceAsync(), Is.Null, "a later observation does: the file was written again");
        Assert.That((await store.ReplicaStatusAsync(None)).Single().FilesBehind, Is.EqualTo(1), "and the replica lacks it");
        await AssertNoDriftAsync();
    }

    [Test]
    public async Task When_the_file_is_recorded_while_its_deletion_is_Should_the_file_end_missing()
    {
        // The list that saw the file, inserting its row, not committed yet: the inventory consumes four lists at a time.
        await using var first = await source.OpenConnectionAsync();
        await using var transaction = await first.BeginTransactionAsync();
        await first.ExecuteAsync("""
            insert into file_origins (origin_host, origin_path, mtime, size_bytes, observed_at, seen_at)
            values (@Host, @Path, @Mtime, @Size, @ObservedAt, @ObservedAt)
            """, Seen(observedSecond: 30), transaction);

        var deletion = store.UpsertOriginsAsync([Gone(observedSecond: 40)], None);
        // The deletion must wait for the row, not miss it: it shows as a statement waiting on a lock.
        await Eventually.True(async () => deletion.IsCompleted || await WaitingOnLockAsync(), Eventually.Patience, "the deletion waits for the row or is done");
        await transaction.CommitAsync();
        await deletion;

        Assert.That(await MissingSinceAsync(), Is.EqualTo(Gone(40).ObservedAt), "the deletion recorded after the file's row committed");
        await AssertNoDriftAsync();
    }

    async Task<bool> WaitingOnLockAsync()
    {
        await using var db = await source.OpenConnectionAsync();
        return await db.ExecuteScalarAsync<bool>("""
            select exists (select 1 from pg_stat_activity
                            where datname = current_database() and wait_event_type = 'Lock' and query like '%file_origins%')
            """);
    }
}
