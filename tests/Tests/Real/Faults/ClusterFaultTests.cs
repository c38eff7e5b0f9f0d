using System.Text.Json.Nodes;
using Dapper;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>The pipeline on a three-node RabbitMQ cluster with quorum queues: a node lost is a node lost, not the pipeline.</summary>
public sealed class ClusterFaultTests : FaultTest
{
    const int FileCount = 5_000;
    /// <summary>Copies recorded after a kill or a restart that show the pipeline goes on (a positive signal, not a pause).</summary>
    const int Progress = 100;

    /// <summary>Files written so far, read by the faults' task.</summary>
    volatile int written;
    readonly TaskCompletionSource secondKilled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    [Test]
    public async Task When_one_node_is_killed_then_another_after_it_rejoined_while_files_flow_Should_lose_nothing()
    {
        await using var cluster = new OwnBrokerCluster(Path.Combine(pipeline.Root, "rabbitmq"));
        await cluster.StartAsync();
        var backup = pipeline.Backup();
        // A short poll: what was in flight to a lost node's connection is found again by the next poll.
        pipeline.Configure([backup], pollInterval: "10s", broker: cluster.Uri, brokerKeys: QuorumOn(cluster));
        var listen = $"127.0.0.1:{Ports.FreeLoopback()}";
        await using var service = new Supervisor("sync continuous=true", () => pipeline.StartProcess("sync", "continuous=true", "--listen", listen));
        await Eventually.True(() => service.Output.Contains("Application started"), TimeSpan.FromMinutes(2), "the service's start");

        var faults = Task.CompletedTask;
        // About 70 s of files, 50 every 0.7 s; the last fifth waits for the second kill (a node's restart takes 20 to 90 s on a busy machine).
        var files = await WriteFilesAsync(pipeline.Data, FileCount, TimeSpan.FromMilliseconds(700), async i =>
        {
            written = i + 1;
            if (i == FileCount / 10)
                faults = Task.Run(() => KillTwoNodesInTurnAsync(cluster));
            if (i == FileCount * 4 / 5)
                await Task.WhenAny(secondKilled.Task, faults).WaitAsync(TimeSpan.FromMinutes(3));
            if (faults.IsFaulted)
                await faults;
        });
        await faults;

        var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count));
        Assert.That(service.ExitCodes, Is.All.EqualTo(Hosting.BusWatchdog.ExitCode), "the only exits are the watchdog's");
        var recorded = await RecordedAsync();
        TestContext.Progress.WriteLine($"cluster audit | files written {files.Count} | recorded {recorded} | on the replica {OnReplica(backup)} | missing 0 | service restarts {service.Restarts}");
        Record("cluster: two nodes SIGKILLed in turn", audited, $"2 node kills of 3, each restarted and rejoined; {service.Restarts} service restarts by the bus watchdog", null, files.Count);
    }

    /// <summary>
    /// Kills the first node (the URI's, where every connection starts), waits for copies to go on
    /// through the others, restarts it on its data and waits until it is back in the cluster and
    /// copies go on; then the same for the second node.
    /// </summary>
    async Task KillTwoNodesInTurnAsync(OwnBrokerCluster cluster)
    {
        await ProgressAsync(cluster, 1, "the first copies recorded");
        foreach (var node in cluster.Nodes.Take(2))
        {
            await cluster.KillAsync(node);
            TestContext.Progress.WriteLine($"{node.Node} killed with {written} of {FileCount} files written");
            if (node != cluster.Nodes[0])
                secondKilled.TrySetResult();
            await ProgressAsync(cluster, Progress, $"copies recorded with {node.Node} down");
            await cluster.RestartAsync(node);
            await ProgressAsync(cluster, Progress, $"copies recorded after {node.Node} rejoined");
        }
    }

    async Task ProgressAsync(OwnBrokerCluster cluster, long more, string what)
    {
        var from = await RecordedAsync();
        try
        {
            // Or every file written so far is recorded (the writer waits for the second kill, or has ended).
            await Eventually.True(async () => await RecordedAsync() is var now && (now >= from + more || now >= written),
                TimeSpan.FromMinutes(2), what);
        }
        catch (AssertionException)
        {
            // What the cluster holds, to tell a stuck queue from a stuck service.
            using var management = cluster.Management(cluster.Nodes[^1]);
            foreach (var queue in await management.QueuesAsync("/"))
                TestContext.Progress.WriteLine($"queue {queue["name"]}: {queue["messages"]} messages, {queue["consumers"]} consumers, leader {queue["leader"]}");
            throw;
        }
        TestContext.Progress.WriteLine($"{what}: {await RecordedAsync()} recorded");
    }

    async Task<long> RecordedAsync()
    {
        await using var db = new NpgsqlConnection(pipeline.Connection);
        return await db.ExecuteScalarAsync<long>("select count(*) from file_replicas where checksum is not null");
    }

    static int OnReplica(string backup) => Directory.EnumerateFiles(Path.Combine(backup, TestPipeline.Host), "*", SearchOption.AllDirectories).Count();

    [Test]
    public async Task When_the_stack_runs_on_a_cluster_with_quorum_queues_Should_declare_every_queue_quorum_on_every_node()
    {
        await using var cluster = new OwnBrokerCluster(Path.Combine(pipeline.Root, "rabbitmq"));
        await cluster.StartAsync();
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup], broker: cluster.Uri, brokerKeys: QuorumOn(cluster)), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "through-the-cluster.dat");
        Files.Write(path, 4096);
        await pipeline.ReplicatedAsync(backup, path);
        // An operator's sync (its own queue of failures), and a malformed observation (an error queue).
        var (exit, output) = await pipeline.RunAsync("sync");
        Assert.That(exit, Is.Zero, output);
        using var management = cluster.Management();
        await management.PublishAsync("/", "amq.default", Queues.FileChanged, "this is not json",
            new Dictionary<string, object> { ["content_type"] = "application/vnd.masstransit+json" });
        await Eventually.Get(async () => await management.PeekAsync("/", Queues.FileChanged + Queues.ErrorSuffix), m => m?.Count == 1,
            TimeSpan.FromSeconds(30), "the malformed observation in file-changed_error");

        var queues = await management.QueuesAsync("/");
        foreach (var queue in queues)
            TestContext.Out.WriteLine($"{queue["name"]}: {queue["type"]}, members {queue["members"]?.ToJsonString()}");
        var names = queues.Select(q => q["name"]!.GetValue<string>()).ToArray();
        Assert.Multiple(() =>
        {
            foreach (var expected in new[] { "file-changed", "file-changed_error", "replica-updated", "replica-updated_error", "resync-requested", "resync-results", "backfill-replica" })
                Assert.That(names, Has.Member(expected));
            Assert.That(names, Has.Some.Match("^replicate-.*[0-9a-f]{6}$").And.Some.Match("^replicate-.*_error$"));
            Assert.That(names, Has.Some.StartsWith("replicator-").And.Some.StartsWith("sync-"), "the queues of one process too");
            foreach (var queue in queues)
            {
                Assert.That(queue["type"]!.GetValue<string>(), Is.EqualTo("quorum"), queue["name"]!.GetValue<string>());
                Assert.That(queue["members"]?.AsArray().Count, Is.EqualTo(cluster.Nodes.Count), $"{queue["name"]} has a member on every node");
            }
        });
    }

    static string QuorumOn(OwnBrokerCluster cluster) => $"nodes = {cluster.NodesToml}\nqueue_type = \"quorum\"";
}
