using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>Rule 5: a message that cannot be processed lands in the error queue with its reason, and the next one is processed.</summary>
public sealed class BadInputTests : PipelineTest
{
    [Test]
    public async Task When_a_message_is_malformed_Should_land_in_the_error_queue_and_not_block_the_next()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);

        // Published to the queue by hand, as from the management UI: not JSON at all, and a path that is not absolute.
        await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", "file-changed", "this is not json",
            new Dictionary<string, object> { ["content_type"] = "application/vnd.masstransit+json" });
        await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", "file-changed", """
            {"messageType": ["urn:message:Xtelemdb:FileChanged"],
             "message": {"host": "exao-test", "path": "relative/../../etc/passwd", "mtime": "2026-11-27T00:00:00Z", "size": 1, "observedAt": "2026-11-27T00:00:00Z"}}
            """, new Dictionary<string, object> { ["content_type"] = "application/vnd.masstransit+json" });

        var path = Path.Combine(pipeline.Data, "after-the-bad-ones.dat");
        Files.Write(path, 4096);
        await pipeline.ReplicatedAsync(backup, path);

        var errors = await Eventually.Get<IReadOnlyList<System.Text.Json.Nodes.JsonObject>>(async () => await pipeline.Management.PeekAsync(pipeline.Name, "file-changed_error"),
            m => m?.Count == 2, Eventually.Patience, "two messages in file-changed_error");
        var reasons = errors.Select(e => e["properties"]!["headers"]!["MT-Fault-Message"]?.ToString()).ToArray();
        TestContext.Out.WriteLine(string.Join("\n", reasons));
        Assert.That(reasons, Has.Some.Contains("not an absolute path: \"relative/../../etc/passwd\""));
        Assert.That(reasons, Has.All.Not.Empty);
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins"), Is.EqualTo(1), "nothing from the bad messages was recorded");
    }

    [Test]
    public async Task When_ReplicaUpdated_names_an_unknown_origin_or_replica_Should_land_in_the_error_queue_naming_it()
    {
        var host = await pipeline.StartAsync(pipeline.Configure([pipeline.Backup()]), PipelineServices.Inventory);
        var bus = host.Services.GetRequiredService<MassTransit.IBus>();
        var copy = new ReplicaUpdated
        {
            ReplicaId = 1, OriginHost = "exao9", OriginPath = "/never/seen.dat", Mtime = DateTime.UtcNow, Size = 1,
            ReplicaPath = "/x", CopiedAt = DateTime.UtcNow,
        };
        await bus.Publish(copy);
        await bus.Publish(new FileChanged { Host = "exao9", Path = "/known.dat", Mtime = DateTime.UtcNow, Size = 1, ObservedAt = DateTime.UtcNow });
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from file_origins") == 1, Eventually.Patience, "the origin row");
        await bus.Publish(copy with { ReplicaId = 42, OriginPath = "/known.dat" });

        var errors = await Eventually.Get<IReadOnlyList<System.Text.Json.Nodes.JsonObject>>(
            async () => await pipeline.Management.PeekAsync(pipeline.Name, "replica-updated_error"),
            m => m?.Count == 2, Eventually.Patience, "two messages in replica-updated_error");
        var reasons = errors.Select(e => e["properties"]!["headers"]!["MT-Fault-Message"]?.ToString()).ToArray();
        Assert.That(reasons, Has.Some.EqualTo("ReplicaUpdated names an origin file the inventory does not know: exao9:/never/seen.dat"));
        Assert.That(reasons, Has.Some.EqualTo("ReplicaUpdated names replica 42, which is not registered"));
        Assert.That(await pipeline.CountAsync("select count(*) from file_replicas"), Is.Zero, "nothing recorded");
    }

    [Test]
    public async Task When_the_configuration_is_malformed_Should_refuse_to_start_naming_the_file_line_and_key()
    {
        pipeline.Configure([]);
        File.AppendAllText(pipeline.ConfigPath, "[watch2]\nsettle = \"2s\"\n");
        var run = pipeline.StartProcess("sync", "continuous=true");
        await run.Process.WaitForExitAsync();
        var stderr = run.Output;
        Assert.That(run.Process.ExitCode, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain($"{pipeline.ConfigPath}:"));
        Assert.That(stderr, Does.Contain("[watch2]: unknown table"));
    }
}
