using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Inventory;
using Xtelemdb.Storage;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>Copies recorded a group per transaction keep the rules of one message at a time.</summary>
public sealed class CopyRecorderTests : PipelineTest
{
    static readonly DateTime T0 = new(2026, 11, 27, 1, 0, 0, DateTimeKind.Utc);
    InventoryStore store = null!;
    string first = null!, second = null!;
    int firstId, secondId;

    Microsoft.Extensions.Hosting.IHost host = null!;

    [SetUp]
    public async Task StartInventoryAsync()
    {
        (first, second) = (pipeline.Backup("first"), pipeline.Backup("second"));
        host = await pipeline.StartAsync(pipeline.Configure([first, second]), PipelineServices.Inventory);
        store = host.Services.GetRequiredService<InventoryStore>();
        var replicas = await store.ReplicasAsync(CancellationToken.None);
        (firstId, secondId) = (replicas.Single(r => r.Url == first).Id, replicas.Single(r => r.Url == second).Id);
    }

    Task SeenAsync(IEnumerable<string> paths, int version) => store.UpsertOriginsAsync(paths.Select(p => new FileChanged
    {
        Host = TestPipeline.Host, Path = p, Mtime = T0.AddSeconds(version), Size = version, ObservedAt = T0.AddMinutes(1),
    }).ToArray(), CancellationToken.None);

    ReplicaUpdated Copied(string path, int version, int copiedSecond, int? replicaId = null) => new()
    {
        ReplicaId = replicaId ?? firstId,
        OriginHost = TestPipeline.Host,
        OriginPath = path,
        Mtime = T0.AddSeconds(version),
        Size = version,
        ReplicaPath = TestPipeline.TargetOf(first, path),
        CopiedAt = T0.AddMinutes(2).AddSeconds(copiedSecond),
    };

    [Test]
    public async Task When_a_group_reports_one_file_twice_Should_keep_the_later_copy_and_ask_every_replica_for_a_version_the_copier_saw_first()
    {
        await SeenAsync(["/a", "/b"], version: 1);

        // Two reports of /a in one group, the later first; the copier saw version 2 before any watcher did.
        var needs = await store.RecordReplicasAsync([Copied("/a", 2, copiedSecond: 20), Copied("/a", 1, copiedSecond: 10), Copied("/b", 1, copiedSecond: 10)], CancellationToken.None);

        var a = await pipeline.ReplicaAsync(first, "/a");
        Assert.That((a!.SizeBytes, a.CopiedAt), Is.EqualTo((2L, T0.AddMinutes(2).AddSeconds(20))), "the later report wins within a group");
        Assert.That((await pipeline.OriginAsync("/a"))!.SizeBytes, Is.EqualTo(2), "the origin moved to the version the copier saw");
        Assert.That(needs, Has.Length.EqualTo(3), "one answer per copy, in order");
        Assert.That(needs[0].Select(n => (n.ReplicaId, n.Size)), Is.EquivalentTo(new[] { (secondId, 2L) }),
            "the other replica is asked for the version the copier saw");
        Assert.That(needs[2].Select(n => n.ReplicaId), Is.Empty, "/b's own replica is in sync, and its origin did not move");
    }

    [Test]
    public async Task When_a_copy_of_an_older_version_is_reported_after_the_watcher_saw_a_newer_one_Should_not_move_the_origin_back()
    {
        // The copier stated version 1 last; the file grew to version 2, the watcher saw it, and only then did the copy's report arrive,
        // stamped later than the watcher's observation (the copier's clock, or a report taken after its rename and fsync).
        await SeenAsync(["/growing.bintel"], version: 2);
        var needs = await store.RecordReplicasAsync([Copied("/growing.bintel", 1, copiedSecond: 30)], CancellationToken.None);

        var origin = await pipeline.OriginAsync("/growing.bintel");
        Assert.That((origin!.SizeBytes, origin.Mtime), Is.EqualTo((2L, T0.AddSeconds(2))), "the origin stays at the newer version");
        Assert.That((await pipeline.ReplicaAsync(first, "/growing.bintel"))!.SizeBytes, Is.EqualTo(1), "the copy is recorded as what it is");
        Assert.That(needs[0].Select(n => (n.ReplicaId, n.Size)), Is.EquivalentTo(new[] { (firstId, 2L) }),
            "the replica is asked again for the newer version (the other replica was asked when the watcher reported it)");
    }

    [Test]
    public async Task When_one_copy_of_a_group_names_an_unknown_replica_Should_record_nothing_of_that_group()
    {
        await SeenAsync(["/c", "/d"], version: 1);
        var error = Assert.ThrowsAsync<UnknownRecordException>(() =>
            store.RecordReplicasAsync([Copied("/c", 1, 0), Copied("/d", 1, 0, replicaId: 999)], CancellationToken.None));
        Assert.That(error!.Message, Does.Contain("one of 2 ReplicaUpdated"));
        Assert.That(await pipeline.ReplicaAsync(first, "/c"), Is.Null, "the group is one transaction");
    }

    [Test]
    public async Task When_concurrent_copies_include_one_unknown_Should_record_the_others_and_fail_only_that_one()
    {
        var paths = Enumerable.Range(0, 60).Select(i => $"/many/f{i}").ToArray();
        await SeenAsync(paths, version: 1);
        var recorder = new CopyRecorder(store);

        // Handed in together, as concurrent consumers would: they share groups, and the bad one is among them.
        var good = paths.Select(p => recorder.RecordAsync(Copied(p, 1, 0), CancellationToken.None)).ToArray();
        var bad = recorder.RecordAsync(Copied("/many/unknown-origin", 1, 0), CancellationToken.None);
        var more = paths.Select(p => recorder.RecordAsync(Copied(p, 1, 1, replicaId: secondId), CancellationToken.None)).ToArray();

        var error = Assert.ThrowsAsync<UnknownRecordException>(async () => await bad);
        Assert.That(error!.Message, Does.Contain("/many/unknown-origin"), "the error names the one bad copy");
        await Task.WhenAll(good.Concat(more));
        Assert.That(await pipeline.CountAsync("select count(*) from file_replicas"), Is.EqualTo(120));
    }

    [Test]
    public async Task When_a_list_of_copies_names_one_unknown_origin_Should_record_the_others_and_send_that_one_alone_to_the_error_queue()
    {
        var paths = Enumerable.Range(0, 30).Select(i => $"/list/f{i}").ToArray();
        await SeenAsync(paths, version: 1);
        var inventory = await host.Services.GetRequiredService<MassTransit.IBus>().GetSendEndpoint(new Uri($"queue:{Queues.ReplicaUpdated}"));

        await inventory.Send(new ReplicasUpdated { Files = [.. paths.Take(15).Select(p => Copied(p, 1, 0)), Copied("/list/unknown-origin", 1, 0), .. paths.Skip(15).Select(p => Copied(p, 1, 0))] });

        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from file_replicas") == paths.Length, TimeSpan.FromSeconds(60), "the list's known copies recorded");
        var failed = await Eventually.Get<IReadOnlyList<System.Text.Json.Nodes.JsonObject>>(
            async () => await pipeline.Management.PeekAsync(pipeline.Name, Queues.ReplicaUpdated + Queues.ErrorSuffix), messages => messages?.Count == 1, TimeSpan.FromSeconds(60), "the unknown copy in the error queue");
        var message = System.Text.Json.Nodes.JsonNode.Parse(failed[0]["payload"]!.GetValue<string>())!["message"]!;
        Assert.That(message["originPath"]!.GetValue<string>(), Is.EqualTo("/list/unknown-origin"), "alone, as a single ReplicaUpdated");
        Assert.That(failed[0]["properties"]!["headers"]!["MT-Fault-Message"]!.GetValue<string>(), Does.Contain("/list/unknown-origin"));
    }
}
