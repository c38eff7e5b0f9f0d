using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>An operator publishes a resync as plain JSON from the management UI; the backlog is rebuilt from the database.</summary>
public sealed class ManualResyncTests : PipelineTest
{
    const string Exchange = Queues.ResyncExchange;
    const string ResyncHint = " (a resync is a JSON object";

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
        // A file may be reported twice (its event and the scan): six files, whatever the requests.
        await Eventually.True(async () => (await pipeline.Management.QueuedRequestsAsync(pipeline.Name, queue)).Select(r => r["originPath"]!.GetValue<string>()).Distinct().Count() == 6,
            TimeSpan.FromSeconds(30), "six files requested");

        // Lost in flight: the replicator never sees them.
        await pipeline.Management.PurgeAsync(pipeline.Name, queue);

        await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", "{ this is not json");
        await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", """{"replica": "/mnt/no-such-replica"}""");
        var errors = await Eventually.Get<IReadOnlyList<JsonObject>>(
            async () => await pipeline.Management.PeekAsync(pipeline.Name, "resync-requested_error"),
            m => m?.Count == 2, TimeSpan.FromSeconds(30), "two bad bodies in resync-requested_error");
        var reasons = errors.Select(e => e["properties"]!["headers"]!["MT-Fault-Message"]?.ToString()).ToArray();
        var unknown = $"ResyncRequested names replica \"/mnt/no-such-replica\", which is not registered; the registered replicas are \"{TestPipeline.Named(backup)}\"";
        Assert.That(reasons, Has.Some.EqualTo(unknown));
        // The operator's answer, readable in the UI's "Get messages": the same reasons, and the bodies they were for.
        var refused = await AnswersAsync(2);
        Assert.That(refused.Select(a => a["outcome"]!.GetValue<string>()), Is.All.EqualTo("refused"));
        Assert.That(refused.Select(a => a["request"]!.GetValue<string>()), Is.EquivalentTo(new[] { "{ this is not json", """{"replica": "/mnt/no-such-replica"}""" }));
        Assert.That(refused.Select(a => a["reason"]!.GetValue<string>()), Has.Some.EqualTo(unknown).And.Some.Contains("a resync is a JSON object"));

        await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", $$"""
            {"replica": "{{backup}}", "originHost": "{{TestPipeline.Host}}", "pathPrefix": "{{pipeline.Data}}/telem/"}
            """);
        // Once the inventory has consumed the resync, every request it makes is in the queue: the five, not the file outside the prefix.
        await resynced.Done.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var requested = (await pipeline.Management.QueuedRequestsAsync(pipeline.Name, queue)).Select(m => m["originPath"]!.GetValue<string>()).ToArray();
        Assert.That(requested, Is.EquivalentTo(paths), "outside the path prefix: not resynced");
        var answer = (await AnswersAsync(3))[^1];
        Assert.That((answer["outcome"]!.GetValue<string>(), answer["replica"]!.GetValue<string>(), answer["copiesRequested"]!.GetValue<long>(), answer["pathPrefix"]!.GetValue<string>()),
            Is.EqualTo(("requested", TestPipeline.Named(backup), 5L, $"{pipeline.Data}/telem/")));

        await pipeline.StartAsync(settings, PipelineServices.Replicator);
        foreach (var path in paths)
            Files.AssertSameFile(path, (await pipeline.ReplicatedAsync(backup, path)).ReplicaPath);
    }

    [Test]
    [NonParallelizable] // counts every in-process inventory's resyncs in /metrics
    public async Task When_a_resync_names_a_replica_by_another_spelling_or_a_field_wrongly_Should_understand_it_or_refuse_naming_the_right_spelling()
    {
        var backup = pipeline.Backup("spelt-backup");
        var settings = pipeline.Configure([backup]);
        var listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, Ports.FreeLoopback());
        await pipeline.StartAsync(settings with { Monitoring = settings.Monitoring with { Listen = listen } }, PipelineServices.Inventory);
        using var http = new HttpClient();
        async Task<(double Requested, double Refused)> ResyncsCountedAsync()
        {
            var metrics = await http.GetStringAsync($"http://{listen}/metrics");
            return (PrometheusText.Sum(metrics, "xtelemdb_inventory_resyncs_total", "outcome=\"requested\""),
                PrometheusText.Sum(metrics, "xtelemdb_inventory_resyncs_total", "outcome=\"refused\""));
        }
        var before = await ResyncsCountedAsync();
        string[] bodies =
        [
            $$"""{"replica": "{{backup}}/"}""",                      // a trailing slash
            """{"replica": "spelt-backup"}""",                       // a relative path that fits one replica
            $$"""{"replica": "{{TestPipeline.Host}}:{{backup}}//"}""",
            $$"""{"replica": "{{backup.ToUpperInvariant()}}"}""",    // absolute and wrong: refused, with the one meant
            $$"""{"replica": "{{backup}}-old"}""",                  // nothing near: refused, with what is registered
            """{"host": "exao-test"}""",                             // a field a resync does not have would widen it to everything
            """{"replica": 5}""",
            """["spelt-backup"]""",
        ];
        foreach (var body in bodies)
            await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", body);

        var answers = await AnswersAsync(bodies.Length);
        var byRequest = answers.ToDictionary(a => a["request"]!.GetValue<string>());
        Assert.That(byRequest.Keys, Is.EquivalentTo(bodies), "one answer for each resync");
        var name = TestPipeline.Named(backup);
        foreach (var understood in bodies[..3])
            Assert.That((byRequest[understood]["outcome"]!.GetValue<string>(), byRequest[understood]["replica"]?.GetValue<string>()), Is.EqualTo(("requested", name)), understood);
        Assert.That(Reason(bodies[3]), Is.EqualTo($"ResyncRequested names replica \"{backup.ToUpperInvariant()}\", which is not registered; did you mean \"{name}\"?"));
        Assert.That(Reason(bodies[4]), Does.EndWith($"the registered replicas are \"{name}\""));
        Assert.That(Reason(bodies[5]), Is.EqualTo("a resync has no field \"host\": its fields are replica, originHost, pathPrefix (each optional)"));
        Assert.That(Reason(bodies[6]), Is.EqualTo("a resync's field \"replica\" is text, not number"));
        Assert.That(Reason(bodies[7]), Does.Contain("a resync is a JSON object"));
        // The exporter may answer a scrape from its cache for a moment: asked again until the counts show.
        var after = before;
        await Eventually.True(async () => (after = await ResyncsCountedAsync()) is var a && a.Requested - before.Requested >= 3 && a.Refused - before.Refused >= 5,
            TimeSpan.FromSeconds(30), "the outcomes counted in /metrics");
        Assert.That((after.Requested - before.Requested, after.Refused - before.Refused), Is.EqualTo((3.0, 5.0)), "the outcomes counted in /metrics");
        var faults = (await pipeline.Management.PeekAsync(pipeline.Name, "resync-requested_error", 20))
            .Select(e => e["properties"]!["headers"]!["MT-Fault-Message"]!.ToString()).ToArray();
        // The same reason in the header, where a body that is not a resync also gets the answer's hint of what one looks like.
        Assert.That(faults, Is.EquivalentTo(bodies[3..].Select(b => Reason(b).Split(ResyncHint)[0])), "each refused body is kept in the error queue with its reason");

        string Reason(string body) => byRequest[body]["outcome"]!.GetValue<string>() == "refused"
            ? byRequest[body]["reason"]!.GetValue<string>()
            : throw new AssertionException($"{body} was not refused: {byRequest[body].ToJsonString()}");
    }

    [Test]
    public async Task When_the_stack_runs_Should_label_every_queue_an_operator_sees_with_what_it_carries()
    {
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup]);
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory | PipelineServices.Replicator);
        var path = Path.Combine(pipeline.Data, "a.dat");
        Files.Write(path, 10);
        await pipeline.ReplicatedAsync(backup, path);
        await pipeline.Management.PublishAsync(pipeline.Name, Exchange, "", "not json");
        await AnswersAsync(1);
        // A message type the inventory does not take (another tool's): kept aside in file-changed_skipped, which says so.
        await pipeline.Management.PublishAsync(pipeline.Name, Queues.FileChanged, "", """{"messageType": ["urn:message:Other:Thing"], "message": {}}""",
            new Dictionary<string, object> { ["content_type"] = "application/vnd.masstransit+json" });
        await Eventually.True(async () => (await pipeline.Management.PeekAsync(pipeline.Name, "file-changed_skipped")).Count == 1, TimeSpan.FromSeconds(30), "skipped");

        var queues = await pipeline.Management.QueuesAsync(pipeline.Name);
        var described = queues.ToDictionary(q => q["name"]!.GetValue<string>(), q => q["arguments"]![Queues.DescriptionArgument]?.GetValue<string>());
        Assert.That(described.Where(q => q.Value is null).Select(q => q.Key), Is.Empty, "every queue says what it carries");
        var replicate = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));
        Assert.That(described.Keys, Is.SupersetOf(new[] { Queues.FileChanged, Queues.ReplicaUpdated, Queues.ResyncRequested, Queues.ResyncResults, replicate, "resync-requested_error" }));
        Assert.That(described[replicate], Does.Contain($"copy requests for {TestPipeline.Host}'s files to replica {TestPipeline.Named(backup)}"));
        Assert.That(described["resync-requested_error"], Does.StartWith("requests from resync-requested that failed for good"));
        Assert.That(described["file-changed_skipped"], Does.StartWith("messages sent to file-changed that none of its consumers takes"));
        var arguments = queues.Single(q => q["name"]!.GetValue<string>() == replicate)["arguments"]!;
        Assert.That((arguments["xtelemdb.origin-host"]!.GetValue<string>(), arguments["xtelemdb.replica"]!.GetValue<string>()), Is.EqualTo((TestPipeline.Host, TestPipeline.Named(backup))));
        var results = queues.Single(q => q["name"]!.GetValue<string>() == Queues.ResyncResults)["arguments"]!;
        Assert.That(results["x-max-length"]!.GetValue<int>(), Is.EqualTo(Queues.ResyncResultsKept), "the answers never grow past their bound");
        // The replicator's and the watcher's own queues, which live as long as they do, are named for their host and purpose.
        Assert.That(described.Keys, Has.One.Match($"^replicator-{TestPipeline.Host}-replica-set-[0-9a-f]{{6}}$"));
        Assert.That(described.Keys, Has.One.Match($"^watcher-{TestPipeline.Host}-faults-[0-9a-f]{{6}}$"));
    }

    /// <summary>The answers in resync-results once there are this many, oldest first, as "Get messages" shows them.</summary>
    async Task<IReadOnlyList<JsonObject>> AnswersAsync(int count)
    {
        var messages = await Eventually.Get<IReadOnlyList<JsonObject>>(
            async () => await pipeline.Management.PeekAsync(pipeline.Name, Queues.ResyncResults, 50),
            m => m?.Count >= count, TimeSpan.FromSeconds(30), $"{count} answers in {Queues.ResyncResults}");
        Assert.That(messages, Has.Count.EqualTo(count), "one answer per resync");
        return messages.Select(m => JsonNode.Parse(m["payload"]!.GetValue<string>())!.AsObject()).ToArray();
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
