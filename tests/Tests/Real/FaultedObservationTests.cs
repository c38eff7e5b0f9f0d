using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// An observation the inventory could not record, past its retries, lands in file-changed_error;
/// the watcher hears of its fault and reports the file again, so it is recorded and copied once
/// the cause is mended, without the file changing and without a restart.
/// </summary>
public sealed class FaultedObservationTests : PipelineTest
{
    const string RetryFor = "5s";

    /// <param name="faults">How many times the list faults before the cause is mended: each fault is reported again, a retry_for apart (the slow tier waits for two).</param>
    [TestCase(1)]
    [TestCase(2, Category = "Faults")]
    public async Task When_a_list_faults_for_good_then_the_cause_is_mended_Should_record_and_copy_the_file_without_a_change_or_a_restart(int faults)
    {
        var backup = pipeline.Backup();
        // An hour's poll: only the watcher's re-check can report the file again within the test. The
        // inventory's retries are what the fault waits for, not what the test checks: 5 s of them, not a minute.
        await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "1h", retryFor: RetryFor), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "night", "refused.dat");

        // The database refuses the file's row (an error no retry mends) until the test lets it in.
        await RefusingTrigger.InstallAsync(pipeline.Connection, path);

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Files.Write(path, 4096);
        var mtime = File.GetLastWriteTimeUtc(path);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // The inventory's retries (about retry_for) run out: the list goes to the error queue.
        var errors = await Eventually.Get(async () => await pipeline.Management.PeekAsync(pipeline.Name, "file-changed_error"),
            m => m?.Count >= faults, TimeSpan.FromMinutes(faults), $"the refused list in file-changed_error {faults} times");
        Assert.That(errors[0]["properties"]!["headers"]!["MT-Fault-Message"]?.ToString(), Does.Contain($"the test refuses {path}"));
        Assert.That(await pipeline.OriginAsync(path), Is.Null, "not recorded while refused");

        var faulted = clock.Elapsed;
        // Each fault came after the retries, not at once: 5.5 s of them at the least, by MassTransit's backoff.
        Assert.That(faulted, Is.GreaterThan(TimeSpan.FromSeconds(4 * faults)), "the inventory retried the list before giving up");
        await RefusingTrigger.LiftAsync(pipeline.Connection);

        var row = await pipeline.ReplicatedAsync(backup, path, TimeSpan.FromMinutes(3));
        TestContext.Out.WriteLine($"in file-changed_error after {faulted.TotalSeconds:0.0} s; copied {(clock.Elapsed - faulted).TotalSeconds:0.0} s after the cause was mended");
        Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));
        var origin = await pipeline.OriginAsync(path);
        Assert.Multiple(() =>
        {
            Assert.That(File.GetLastWriteTimeUtc(path), Is.EqualTo(mtime), "the file did not change");
            Assert.That(origin!.Mtime, Is.EqualTo(Microseconds.Truncate(mtime)));
            Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(path)));
        });
    }

    [Test]
    public async Task When_the_watcher_is_away_as_a_fault_is_published_Should_its_host_queue_keep_the_fault_for_it()
    {
        var settings = pipeline.Configure([], pollInterval: "1h");
        var watcher = await pipeline.StartAsync(settings, PipelineServices.Watcher);
        var name = $"watcher-{TestPipeline.Host}-faults";
        var queue = await Eventually.Get(async () => (await pipeline.Management.QueuesAsync(pipeline.Name)).FirstOrDefault(q => q["name"]!.ToString() == name),
            q => q is not null, Eventually.Patience, "the host's fault queue");
        Assert.Multiple(() =>
        {
            Assert.That(queue!["durable"]!.GetValue<bool>(), Is.True, queue.ToJsonString());
            Assert.That(queue["exclusive"]!.GetValue<bool>() || queue["auto_delete"]!.GetValue<bool>(), Is.False, "outlives its connection");
            Assert.That(queue["arguments"]!["x-expires"]!.GetValue<long>(), Is.EqualTo((long)TimeSpan.FromDays(7).TotalMilliseconds));
            Assert.That(queue["arguments"]!["xtelemdb.description"]!.ToString(), Does.Contain("could not record"));
        });
        // The exchange MassTransit publishes Fault<FilesChanged> to, bound to the queue's own exchange.
        var exchange = (await pipeline.Management.BindingsToAsync(pipeline.Name, name))
            .Select(b => b["source"]!.ToString()).Single(source => source.Contains("Fault", StringComparison.Ordinal));

        await pipeline.StopAsync(watcher);
        var path = Path.Combine(pipeline.Data, "away.dat");
        // What the inventory's consume pipeline publishes when a list runs out of retries. Unrouted, PublishAsync throws.
        await pipeline.Management.PublishAsync(pipeline.Name, exchange, "", $$$"""
            {"messageId": "{{{Guid.NewGuid()}}}",
             "messageType": ["urn:message:MassTransit:Fault[[Xtelemdb:FilesChanged]]", "urn:message:MassTransit:Fault"],
             "message": {"faultId": "{{{Guid.NewGuid()}}}", "timestamp": "{{{DateTime.UtcNow:O}}}",
                         "exceptions": [{"exceptionType": "Npgsql.PostgresException", "message": "the test's refusal"}],
                         "faultMessageTypes": ["urn:message:Xtelemdb:FilesChanged"],
                         "message": {"files": [{"host": "{{{TestPipeline.Host}}}", "path": "{{{path}}}", "mtime": "{{{DateTime.UtcNow:O}}}", "size": 1,
                                                "observedAt": "{{{DateTime.UtcNow:O}}}"}]}
                        }
            }
            """, new Dictionary<string, object> { ["content_type"] = "application/vnd.masstransit+json", ["delivery_mode"] = 2 });
        Assert.That(await pipeline.Management.PeekAsync(pipeline.Name, name), Has.Count.EqualTo(1), "kept while its watcher is away");

        await pipeline.StartAsync(settings, PipelineServices.Watcher);
        await Eventually.True(async () => (await pipeline.Management.QueuesAsync(pipeline.Name))
                .Any(q => q["name"]!.ToString() == name && q["consumers"]?.GetValue<int>() > 0 && q["messages"]?.GetValue<int>() == 0)
                && (await pipeline.Management.PeekAsync(pipeline.Name, name)).Count == 0,
            Eventually.Patience, "the fault taken by the watcher back");
        Assert.That(await pipeline.Management.PeekAsync(pipeline.Name, name + "_error"), Is.Empty, "taken, not failed");
    }
}
