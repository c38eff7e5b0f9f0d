using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>Rule 3: a duplicate or stale message changes nothing and never moves a record backwards.</summary>
public sealed class RecordOrderTests : PipelineTest
{
    static readonly TimeSpan Timeout = Eventually.Patience;
    static readonly DateTime T0 = new(2026, 11, 27, 1, 0, 0, DateTimeKind.Utc);
    IBus bus = null!;
    string backup = null!;
    Consumed<FileChanged> observations = null!;
    Consumed<ReplicaUpdated> copies = null!;
    int published, reported;

    [SetUp]
    public async Task StartInventoryAsync()
    {
        backup = pipeline.Backup();
        // The inventory alone: the messages come from the test, as a watcher and a replicator would send them.
        var host = await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.Inventory);
        bus = host.Services.GetRequiredService<IBus>();
        // Counted afresh for each test: NUnit keeps one instance of the fixture.
        (observations, copies, published, reported) = (new(), new(), 0, 0);
        bus.ConnectConsumeMessageObserver(observations);
        bus.ConnectConsumeMessageObserver(copies);
    }

    Task PublishAsync(FileChanged seen)
    {
        published++;
        return bus.Publish(seen);
    }

    Task PublishAsync(ReplicaUpdated copied)
    {
        reported++;
        return bus.Publish(copied);
    }

    static FileChanged Seen(string path, int version, int observedSecond) => new()
    {
        Host = TestPipeline.Host,
        Path = path,
        Mtime = T0.AddSeconds(version).AddTicks(1234567 % 10_000_000), // sub-second mtimes, to the microsecond
        Size = 1000 * version,
        ObservedAt = T0.AddMinutes(10).AddSeconds(observedSecond),
    };

    static ReplicaUpdated Copied(string path, int version, int copiedSecond, string backup) => new()
    {
        ReplicaId = 1,
        OriginHost = TestPipeline.Host,
        OriginPath = path,
        Mtime = T0.AddSeconds(version).AddTicks(1234567 % 10_000_000),
        Size = 1000 * version,
        ReplicaPath = TestPipeline.TargetOf(backup, path),
        Checksum = $"xxh3:{version:x16}",
        CopiedAt = T0.AddMinutes(20).AddSeconds(copiedSecond),
    };

    /// <summary>Waits until the inventory has consumed every message the test published so far.</summary>
    async Task AllConsumedAsync()
    {
        await observations.WaitAsync(published, Timeout);
        await copies.WaitAsync(reported, Timeout);
    }

    [Test]
    public async Task When_FileChanged_arrives_duplicated_and_out_of_order_Should_keep_the_latest_observation()
    {
        const string path = "/opt/MagAOX/telem/order.bintel";
        await PublishAsync(Seen(path, 2, observedSecond: 20));
        await Eventually.True(async () => (await pipeline.OriginAsync(path))?.SizeBytes == 2000, Timeout, "version 2 recorded");

        await PublishAsync(Seen(path, 1, observedSecond: 10)); // stale: observed before version 2
        await PublishAsync(Seen(path, 2, observedSecond: 20)); // duplicate
        await PublishAsync(Seen(path, 2, observedSecond: 25)); // the same version seen again later
        await AllConsumedAsync();

        var origin = await pipeline.OriginAsync(path);
        Assert.That(origin!.SizeBytes, Is.EqualTo(2000));
        Assert.That(origin.Mtime, Is.EqualTo(Seen(path, 2, 0).Mtime));

        await PublishAsync(Seen(path, 3, observedSecond: 30));
        await Eventually.True(async () => (await pipeline.OriginAsync(path))?.SizeBytes == 3000, Timeout, "a newer observation still moves it forward");
    }

    [Test]
    public async Task When_a_deletion_is_stale_Should_not_mark_a_present_file_missing()
    {
        const string path = "/opt/MagAOX/logs/back.log";
        await PublishAsync(Seen(path, 1, observedSecond: 30));
        await Eventually.True(async () => await pipeline.OriginAsync(path) is not null, Timeout, "the origin row");
        await PublishAsync(Seen(path, 1, observedSecond: 20) with { Deleted = true });
        await AllConsumedAsync();
        Assert.That((await pipeline.OriginAsync(path))!.MissingSince, Is.Null);

        await PublishAsync(Seen(path, 1, observedSecond: 40) with { Deleted = true });
        await Eventually.True(async () => (await pipeline.OriginAsync(path))!.MissingSince is not null, Timeout, "a later deletion marks it");
        Assert.That((await pipeline.OriginAsync(path))!.SizeBytes, Is.EqualTo(1000), "the last version is kept");
    }

    [Test]
    public async Task When_ReplicaUpdated_arrives_duplicated_and_out_of_order_Should_keep_the_latest_copy()
    {
        const string path = "/opt/MagAOX/rawimages/cam.fits";
        await PublishAsync(Seen(path, 2, observedSecond: 20));
        await Eventually.True(async () => await pipeline.OriginAsync(path) is not null, Timeout, "the origin row");

        await PublishAsync(Copied(path, 2, copiedSecond: 20, backup));
        await Eventually.True(async () => (await pipeline.ReplicaAsync(backup, path))?.SizeBytes == 2000, Timeout, "the copy of version 2 recorded");
        await PublishAsync(Copied(path, 1, copiedSecond: 10, backup)); // a stale report of an older copy
        await PublishAsync(Copied(path, 2, copiedSecond: 20, backup)); // duplicate
        await AllConsumedAsync();

        var replica = await pipeline.ReplicaAsync(backup, path);
        Assert.That((replica!.SizeBytes, replica.Checksum), Is.EqualTo((2000L, $"xxh3:{2:x16}")));
        Assert.That(replica.CopiedAt, Is.EqualTo(Copied(path, 2, 20, backup).CopiedAt));
    }

    [Test]
    public async Task When_the_copier_saw_a_newer_version_than_the_inventory_Should_record_it_on_the_origin_too()
    {
        const string path = "/opt/MagAOX/telem/fast.bintel";
        await PublishAsync(Seen(path, 1, observedSecond: 10));
        await Eventually.True(async () => await pipeline.OriginAsync(path) is not null, Timeout, "the origin row");

        // The watcher's FileChanged for version 2 is still in flight; the copier already copied it.
        await PublishAsync(Copied(path, 2, copiedSecond: 0, backup));
        await Eventually.True(async () => (await pipeline.OriginAsync(path))!.SizeBytes == 2000, Timeout, "the origin moved to the copied version");
        // The watcher's report, observed before the copy, arrives last and changes nothing.
        await PublishAsync(Seen(path, 2, observedSecond: 30));
        await AllConsumedAsync();
        Assert.That((await pipeline.ReplicaAsync(backup, path))!.SizeBytes, Is.EqualTo(2000));
        Assert.That((await pipeline.OriginAsync(path))!.SizeBytes, Is.EqualTo(2000));
    }
}
