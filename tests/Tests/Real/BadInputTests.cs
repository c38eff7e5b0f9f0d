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
            m => m?.Count == 2, TimeSpan.FromSeconds(30), "two messages in file-changed_error");
        var reasons = errors.Select(e => e["properties"]!["headers"]!["MT-Fault-Message"]?.ToString()).ToArray();
        TestContext.Out.WriteLine(string.Join("\n", reasons));
        Assert.That(reasons, Has.Some.Contains("not an absolute path: \"relative/../../etc/passwd\""));
        Assert.That(reasons, Has.All.Not.Empty);
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins"), Is.EqualTo(1), "nothing from the bad messages was recorded");
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
