using System.Diagnostics;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// Three RabbitMQ nodes of one test's own, joined in a cluster, on 127.0.0.1: each an
/// <see cref="OwnBroker"/> with its own node name, AMQP, management and distribution ports and
/// data folder. They share the machine's epmd, and the Erlang cookie of the rabbitmq user
/// (Debian's scripts run every node, and rabbitmqctl, as that user with its home's .erlang.cookie).
/// A node is SIGKILLed and started again on its data, where it rejoins the cluster by itself.
/// </summary>
public sealed class OwnBrokerCluster : IAsyncDisposable
{
    const string Ctl = "/usr/sbin/rabbitmqctl";
    readonly OwnBroker[] nodes;

    public OwnBrokerCluster(string root, int size = 3) =>
        nodes = Enumerable.Range(1, size).Select(i => new OwnBroker(Path.Combine(root, $"rabbit{i}"), Ports.FreeLoopback())).ToArray();

    public IReadOnlyList<OwnBroker> Nodes => nodes;

    /// <summary>The first node (virtual host "/"): the services' [broker] uri.</summary>
    public Uri Uri => nodes[0].Uri;

    /// <summary>The [broker] table's node list: every node, the URI's first.</summary>
    public string NodesToml => "[" + string.Join(", ", nodes.Select(n => $"\"127.0.0.1:{n.Port}\"")) + "]";

    /// <summary>Starts the nodes side by side, then joins the others to the first: quorum queues need the cluster formed before they are declared.</summary>
    public async Task StartAsync()
    {
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(nodes.Select(n => n.StartAsync()));
        TestContext.Progress.WriteLine($"{nodes.Length} nodes started in {clock.Elapsed.TotalSeconds:0.0} s");
        // Stopping and starting a node's application are the slow steps: side by side; the joins one at a time.
        var others = nodes.Skip(1).ToArray();
        await Task.WhenAll(others.Select(node => RunAsync(node, "stop_app")));
        foreach (var node in others)
            await RunAsync(node, "join_cluster", nodes[0].Node);
        await Task.WhenAll(others.Select(node => RunAsync(node, "start_app")));
        await RunAsync(nodes[0], "await_online_nodes", nodes.Length.ToString(), "--timeout", "60000");
        TestContext.Progress.WriteLine($"cluster of {nodes.Length} nodes formed in {clock.Elapsed.TotalSeconds:0.0} s: {string.Join(", ", nodes.Select(n => $"{n.Node} :{n.Port}"))}");
    }

    /// <summary>SIGKILL to one node: no shutdown, no flush.</summary>
    public Task KillAsync(OwnBroker node) => node.KillAsync();

    /// <summary>Starts a killed node again on its data, and waits until the cluster counts it online again.</summary>
    public async Task RestartAsync(OwnBroker node)
    {
        await node.StartAsync();
        await RunAsync(node, "await_online_nodes", nodes.Length.ToString(), "--timeout", "60000");
        TestContext.Progress.WriteLine($"{node.Node} is back in the cluster");
    }

    /// <summary>The management API of a node that runs, as an operator opens it in the UI.</summary>
    public Management Management(OwnBroker? node = null) => new(new Uri($"http://127.0.0.1:{(node ?? nodes[0]).ManagementPort}/"),
        Environment.GetEnvironmentVariable("XTELEMDB_BROKER_USER")!, Environment.GetEnvironmentVariable("XTELEMDB_BROKER_PASSWORD")!);

    static async Task RunAsync(OwnBroker node, params string[] arguments)
    {
        var start = new ProcessStartInfo(Ctl) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])["-n", node.Node, .. arguments])
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.That(process.ExitCode, Is.Zero, $"rabbitmqctl {string.Join(' ', start.ArgumentList)}: {await output}{await error}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in nodes)
            await node.DisposeAsync();
    }
}
