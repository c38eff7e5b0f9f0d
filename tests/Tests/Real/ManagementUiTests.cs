using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The resync an operator asks for in the RabbitMQ management UI, clicked through in a real browser:
/// published on the exchange's page, answered in resync-results, refused bodies in the error queue.
/// Each step is kept as a screenshot.
/// </summary>
public sealed class ManagementUiTests : PipelineTest
{
    const string Exchange = "Xtelemdb:ResyncRequested";
    const string Answers = "resync-results";
    const string Faults = "resync-requested_error";
    static readonly TimeSpan Timeout = Eventually.Patience;

    [Test]
    public async Task When_an_operator_publishes_a_resync_in_the_management_UI_Should_restore_the_lost_copy_answer_in_resync_results_and_refuse_a_bad_body()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.Watcher | PipelineServices.Inventory | PipelineServices.Replicator);
        var paths = Enumerable.Range(0, 3).Select(i => Path.Combine(pipeline.Data, "telem", $"t{i}.bintel")).ToArray();
        for (var i = 0; i < paths.Length; i++)
            Files.Write(paths[i], 4000 + i, seed: i);
        foreach (var path in paths)
            await pipeline.ReplicatedAsync(backup, path);

        // Lost from the disk and from the database alike: the watcher sees no change, so only a resync asks for it again.
        var lost = paths[1];
        var lostCopy = (await pipeline.ReplicaAsync(backup, lost))!.ReplicaPath;
        File.Delete(lostCopy);
        await using (var connection = new NpgsqlConnection(pipeline.Connection))
            await connection.ExecuteAsync("""
                delete from file_replicas fr using replicas r
                 where r.id = fr.replica_id and r.url = @Url and fr.origin_host = @Host and fr.origin_path = @Path
                """, new { Url = backup, Host = TestPipeline.Host, Path = lost });
        Assert.That(await pipeline.ReplicaAsync(backup, lost), Is.Null, "the database says the copy is missing");

        await using var ui = await ManagementUi.StartAsync(TestServices.Management);
        var credentials = TestServices.Amqp.UserInfo.Split(':');
        await ui.LoginAsync(Uri.UnescapeDataString(credentials[0]), Uri.UnescapeDataString(credentials.ElementAtOrDefault(1) ?? ""));
        await ui.ScreenshotAsync("logged in");

        var request = $$"""{"replica": "{{TestPipeline.Named(backup)}}"}""";
        await ui.PublishAsync(pipeline.Name, Exchange, request);
        await ui.ScreenshotAsync("resync published");

        // The answer is raw JSON, as an operator reads it on the page; it stays in the queue ("Nack message requeue true").
        var requested = await AnswerAsync(ui, "requested");
        await ui.ScreenshotAsync("resync answered");
        Assert.That(requested["request"]?.GetValue<string>(), Is.EqualTo(request), requested.ToJsonString());
        Assert.That(requested["replica"]?.GetValue<string>(), Is.EqualTo(TestPipeline.Named(backup)), requested.ToJsonString());
        Assert.That(requested["copiesRequested"]?.GetValue<int>(), Is.EqualTo(1), requested.ToJsonString());

        var restored = await pipeline.ReplicatedAsync(backup, lost);
        Assert.That(restored.ReplicaPath, Is.EqualTo(lostCopy));
        Files.AssertSameFile(lost, restored.ReplicaPath);

        const string badBody = "{ this is not json";
        await ui.PublishAsync(pipeline.Name, Exchange, badBody);
        await ui.ScreenshotAsync("bad body published");
        var fault = (await Eventually.Get<IReadOnlyList<ShownMessage>>(
            async () => await ui.GetMessagesAsync(pipeline.Name, Faults),
            shown => shown?.Count > 0, Timeout, $"the bad body in {Faults}")).Single();
        await ui.ScreenshotAsync("bad body in the error queue");
        Assert.That(fault.Payload, Is.EqualTo(badBody));
        Assert.That(fault.Headers, Does.ContainKey("MT-Fault-Message"), fault.Properties);
        var problem = fault.Headers["MT-Fault-Message"];
        Assert.That(problem, Does.Contain("invalid start of a property name"), fault.Properties);

        var refused = await AnswerAsync(ui, "refused");
        await ui.ScreenshotAsync("bad body refused");
        Assert.That(refused["request"]?.GetValue<string>(), Is.EqualTo(badBody), refused.ToJsonString());
        Assert.That(refused["copiesRequested"]?.GetValue<int>(), Is.Zero, refused.ToJsonString());
        Assert.That(refused["reason"]?.GetValue<string>(), Does.Contain(problem), "the answer names the problem the error queue's header does");
    }

    /// <summary>The first answer in resync-results with this outcome, as the management UI shows its payload.</summary>
    async Task<JsonObject> AnswerAsync(ManagementUi ui, string outcome)
    {
        var shown = await Eventually.Get<IReadOnlyList<ShownMessage>>(
            async () => await ui.GetMessagesAsync(pipeline.Name, Answers, 20),
            messages => messages?.Any(m => Outcome(m) == outcome) == true, Timeout, $"an answer \"{outcome}\" in {Answers}");
        return (JsonNode.Parse(shown.First(m => Outcome(m) == outcome).Payload) as JsonObject)!;
    }

    static string? Outcome(ShownMessage message)
    {
        try
        {
            return JsonNode.Parse(message.Payload)?["outcome"]?.GetValue<string>();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}
