using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>[broker] queue_type on the shared broker's one node: quorum queues work there too, and a queue of the other type stops the service.</summary>
public sealed class QueueTypeTests : PipelineTest
{
    [Test]
    public async Task When_queue_type_is_quorum_Should_replicate_through_quorum_queues()
    {
        await StartQuorumAndReplicateAsync("through-quorum.dat");

        var queues = await pipeline.Management.QueuesAsync(pipeline.Name);
        var types = queues.ToDictionary(q => q["name"]!.GetValue<string>(), q => q["type"]!.GetValue<string>());
        TestContext.Out.WriteLine(string.Join("\n", types.Select(t => $"{t.Key}: {t.Value}")));
        Assert.That(types.Keys, Has.Some.StartsWith("replicate-").And.Some.EqualTo(Queues.FileChanged).And.Some.EqualTo(Queues.ReplicaUpdated));
        Assert.That(types.Where(t => t.Value != "quorum"), Is.Empty, "every queue is a quorum queue");
    }

    [Test]
    public async Task When_a_quorum_replicate_queue_is_deleted_while_the_services_run_Should_declare_it_again_and_copy_the_next_file()
    {
        var backup = await StartQuorumAndReplicateAsync("before-delete.dat");

        var replicate = (await pipeline.Management.QueuesAsync(pipeline.Name)).Select(q => q["name"]!.GetValue<string>())
            .Single(name => name.StartsWith("replicate-", StringComparison.Ordinal) && !name.EndsWith(Queues.ErrorSuffix, StringComparison.Ordinal));
        await pipeline.Management.DeleteQueueAsync(pipeline.Name, replicate);

        // The inventory's send to the queue's exchange, now bound to nothing, is returned, declares the queue again and goes again.
        var second = Path.Combine(pipeline.Data, "after-delete.dat");
        Files.Write(second, 4096);
        await pipeline.ReplicatedAsync(backup, second, TimeSpan.FromSeconds(60));
        var queues = await pipeline.Management.QueuesAsync(pipeline.Name);
        Assert.That(queues.Where(q => q["name"]!.GetValue<string>() == replicate).Select(q => q["type"]!.GetValue<string>()), Is.EqualTo(new[] { "quorum" }), "the queue is back, a quorum queue");
    }

    /// <summary>Starts every service on quorum queues and waits for a first file's copy; returns the replica.</summary>
    async Task<string> StartQuorumAndReplicateAsync(string name)
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup], brokerKeys: "queue_type = \"quorum\""), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, name);
        Files.Write(path, 4096);
        await pipeline.ReplicatedAsync(backup, path);
        return backup;
    }

    [TestCase("classic", "quorum", TestName = "When_a_classic_stack_is_started_with_quorum_queues_Should_exit_naming_the_queue_and_the_migration")]
    [TestCase("quorum", "classic", TestName = "When_a_quorum_stack_is_started_with_classic_queues_Should_exit_naming_the_queue_and_the_migration")]
    public async Task When_the_queue_type_changes_on_an_existing_stack(string before, string after)
    {
        var backup = pipeline.Backup();
        var host = await pipeline.StartAsync(pipeline.Configure([backup], brokerKeys: $"queue_type = \"{before}\""), PipelineServices.Inventory);
        await pipeline.StopAsync(host);
        pipeline.Configure([backup], brokerKeys: $"queue_type = \"{after}\"");

        var (exit, output) = await pipeline.RunAsync("run", "Inventory");

        Assert.That(exit, Is.EqualTo(2), output);
        Assert.That(output, Does.Contain($"[broker] queue_type = \"{after}\""));
        Assert.That(output, Does.Match(@"queue (file-changed|replica-updated|resync-requested|backfill-replica|resync-results)(_error)? in virtual host"), "names the queue");
        Assert.That(output, Does.Contain("inequivalent arg 'x-queue-type'"), "says what the broker said");
        Assert.That(output, Does.Contain("To change queue_type: stop every xtelemdb service"), "says how to migrate");
    }
}
