using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>An operator publishes a resync as plain JSON from the management UI; the backlog is rebuilt from the database.</summary>
public sealed class ManualResyncTests : PipelineTest
{
    const string Exchange = "Xtelemdb:ResyncRequested";
    [Test]
    public async Task When_requests_were_lost_and_an_operator_publishes_a_resync_Should_copy_the_backlog_and_reject_bad_bodies()
    {
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup]);
        var inventory = await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory);
        var resynced = new Resynced();
        using var observer = inventory.Services.GetRequiredService<MassTransit.IBus>().ConnectConsumeMessageObserver(resynced);
        var queue = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));
        var paths = Enumerable.Range(0, 5).Select(i => Path.Combine(pipeline.Data, "telem", $"t{i}.bintel")).ToArray();
        foreach (var path in paths)
            Files.Write(path, 777);
        var other = Path.Combine(pipeline.Data, "logs", "not-in-the-prefix.log");
        Files.Write(other, 10);
        await Eventually.True(async () => (await pipeline.Management.PeekAsync(pipeline.Name, queue, 20)).Count == 6, TimeSpan.FromSeconds(30), "six requests queued");

        // Lost in flight: the replicator never sees them.
        await pipeline.Management.PurgeAsync(pipeline.Name, queue);

        await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", "{ this is not json");
        await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", """{"replica": "/mnt/no-such-replica"}""");
        var errors = await Eventually.Get<IReadOnlyList<System.Text.Json.Nodes.JsonObject>>(
            async () => await pipeline.Management.PeekAsync(pipeline.Name, "resync-requested_error"),
            m => m?.Count == 2, TimeSpan.FromSeconds(30), "two bad bodies in resync-requested_error");
        var reasons = errors.Select(e => e["properties"]!["headers"]!["MT-Fault-Message"]?.ToString()).ToArray();
        Assert.That(reasons, Has.Some.EqualTo("ResyncRequested names replica \"/mnt/no-such-replica\", which is not registered"));

        await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", $$"""
            {"replica": "{{backup}}", "originHost": "{{TestPipeline.Host}}", "pathPrefix": "{{pipeline.Data}}/telem/"}
            """);
        // Once the inventory has consumed the resync, every request it makes is in the queue: the five, not the file outside the prefix.
        await resynced.Done.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var requested = (await pipeline.Management.PeekAsync(pipeline.Name, queue, 20))
            .Select(m => System.Text.Json.Nodes.JsonNode.Parse(m["payload"]!.GetValue<string>())!["message"]!["originPath"]!.GetValue<string>()).ToArray();
        Assert.That(requested, Is.EquivalentTo(paths), "outside the path prefix: not resynced");

        await pipeline.StartAsync(settings, PipelineServices.Replicator);
        foreach (var path in paths)
            Files.AssertSameFile(path, (await pipeline.ReplicatedAsync(backup, path)).ReplicaPath);
    }

    /// <summary>Completes when the inventory has consumed (and acknowledged) a resync that names a path prefix.</summary>
    sealed class Resynced : MassTransit.IConsumeMessageObserver<ResyncRequested>
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task PreConsume(MassTransit.ConsumeContext<ResyncRequested> context) => Task.CompletedTask;

        public Task PostConsume(MassTransit.ConsumeContext<ResyncRequested> context)
        {
            if (context.Message.PathPrefix is not null)
                Done.TrySetResult();
            return Task.CompletedTask;
        }

        public Task ConsumeFault(MassTransit.ConsumeContext<ResyncRequested> context, Exception exception) => Task.CompletedTask;
    }
}
