using System.CommandLine;
using Xtelemdb.Cli.Operations;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Cli.Commands;

public static class ReplicaListCommand
{
    public static Command Create()
    {
        var json = XtelemdbCommand.Json();
        var queuesOption = new Option<bool>("--queues")
        {
            Description = "One row per (origin host, replica) pair instead: its queue in the management UI, the requests waiting there, its consumers and its error queue; then the inventory's queues",
        };
        var command = new Command("replica-list",
            "One row per replica: files in sync and behind, bytes behind, oldest file behind, last copy, and the (origin host, replica) pairs no running replicator serves") { json, queuesOption };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            // No bus: this command sends nothing. The broker is asked after the database, but connected to meanwhile.
            var connecting = QueueConsumers.ConnectAsync(settings.Broker, cancellationToken);
            await using var session = await OperatorSession.StartAsync(settings, cancellationToken);
            var replicas = await session.Store.ReplicaStatusAsync(cancellationToken);
            var names = replicas.ToDictionary(r => r.Id, r => r.Name);
            var pairs = (await session.Store.PairStatusAsync(cancellationToken))
                .Select(p => new { p.ReplicaId, p.OriginHost, Queue = Queues.Replicate(p.OriginHost, names[p.ReplicaId]), p.FilesBehind, p.BytesBehind })
                .ToArray();
            await using var broker = await connecting;
            var queues = await broker.CountAsync(pairs.SelectMany(p => new[] { p.Queue, p.Queue + "_error" }).Concat(InventoryQueues), cancellationToken);
            if (result.GetValue(queuesOption))
            {
                PrintQueues(settings.Broker, pairs.Select(p => (p.OriginHost, names[p.ReplicaId], p.Queue, p.FilesBehind)), queues, result.GetValue(json));
                return XtelemdbCommand.Done;
            }
            var unserved = pairs.Where(p => queues[p.Queue].Consumers == 0).ToLookup(p => p.ReplicaId);
            var failing = pairs.Where(p => queues[p.Queue + "_error"].Messages > 0).ToArray();
            // This host's own folders are checked here; another host's replicator reports its own in /health.
            var available = new Dictionary<int, bool>();
            foreach (var replica in replicas.Where(r => r.Enabled && r.Kind == "local" && r.Host == settings.Host))
                available[replica.Id] = await new LocalReplicaTarget(replica.Url).HasMarkerAsync(cancellationToken);

            if (result.GetValue(json))
            {
                Output.WriteJson(replicas.Select(r => new
                {
                    r.Id, r.Url, r.Kind, r.Host, r.Name, r.Enabled, Available = available.TryGetValue(r.Id, out var marked) ? marked : (bool?)null, r.FilesInSync, r.FilesBehind, r.BytesBehind, r.OldestBehind, r.LastCopy,
                    Flushed = r.Unflushed is null, r.Unflushed,
                    Pairs = pairs.Where(p => p.ReplicaId == r.Id).Select(p => new
                    {
                        p.OriginHost, p.Queue, queues[p.Queue].Consumers, Served = queues[p.Queue].Consumers > 0, p.FilesBehind, p.BytesBehind,
                        Failed = queues[p.Queue + "_error"].Messages,
                    }),
                }));
                return XtelemdbCommand.Done;
            }
            Output.Table(["replica", "kind", "in sync", "behind", "bytes behind", "oldest behind", "last copy", "enabled", "unserved"],
                replicas.Select(r => (IReadOnlyList<string>)[r.Name, r.Kind, $"{r.FilesInSync:N0}", $"{r.FilesBehind:N0}", Output.Bytes(r.BytesBehind),
                    Output.Age(r.OldestBehind), r.LastCopy is { } last ? $"{last:yyyy-MM-dd HH:mm:ss}Z" : "-", r.Enabled ? "yes" : "no",
                    unserved[r.Id].Any() ? string.Join(",", unserved[r.Id].Select(p => p.OriginHost)) : "-"]));
            foreach (var replica in replicas.Where(r => available.TryGetValue(r.Id, out var marked) && !marked))
                Output.Line($"UNAVAILABLE: {replica.Name}: its marker {replica.Url}/{ReplicaMarker.FileName} is missing (a backup disk not mounted?): "
                    + "nothing is written there. Mount it (or run add_replica for a new one), then 'xtelemdb sync'.");
            foreach (var replica in replicas.Where(r => r.Enabled && r.Unflushed is not null))
                Output.Line($"NOT FLUSHED: {replica.Name}: {replica.Unflushed}; a crash of that host within that time loses copies recorded as made ('xtelemdb verify' finds them).");
            foreach (var pair in unserved.SelectMany(p => p))
                Output.Line($"UNSERVED: {pair.OriginHost} -> {names[pair.ReplicaId]}: no running replicator consumes queue {pair.Queue}; "
                    + $"{pair.FilesBehind:N0} files ({Output.Bytes(pair.BytesBehind)}) behind. A replicator that reads {pair.OriginHost}'s files "
                    + "(on that host, or through [origins] mount) and writes this replica (on its host, or over SFTP) serves it.");
            foreach (var pair in failing)
                Output.Line($"FAILED: {pair.OriginHost} -> {names[pair.ReplicaId]}: {queues[pair.Queue + "_error"].Messages:N0} requests in {pair.Queue}_error "
                    + "(each message's MT-Fault-Message header says why: a missing marker, a full disk, an unknown host key); once mended, 'xtelemdb sync'.");
            return XtelemdbCommand.Done;
        }));
        return command;
    }

    static readonly string[] InventoryQueues =
        [Queues.FileChanged, Queues.ReplicaUpdated, Queues.ResyncRequested, Queues.BackfillReplica, Queues.ResyncResults];

    /// <summary>Which queue in the management UI is which pair, and the inventory's own, as the broker sees them now.</summary>
    static void PrintQueues(BrokerSettings broker, IEnumerable<(string OriginHost, string Replica, string Queue, long FilesBehind)> pairs,
        IReadOnlyDictionary<string, QueueState> queues, bool json)
    {
        var rows = pairs.OrderBy(p => p.Replica, StringComparer.Ordinal).ThenBy(p => p.OriginHost, StringComparer.Ordinal)
            .Select(p => (p.OriginHost, p.Replica, p.Queue, State: queues[p.Queue], Errors: queues[p.Queue + Queues.ErrorSuffix].Messages, p.FilesBehind))
            .ToArray();
        var vhost = broker.VirtualHost;
        if (json)
        {
            Output.WriteJson(new
            {
                VirtualHost = vhost,
                Pairs = rows.Select(r => new { r.OriginHost, r.Replica, r.Queue, Waiting = r.State.Messages, r.State.Consumers, ErrorQueue = r.Queue + Queues.ErrorSuffix, r.Errors, r.FilesBehind }),
                Inventory = InventoryQueues.Select(q => new { Queue = q, Waiting = queues[q].Messages, queues[q].Consumers }),
            });
            return;
        }
        Output.Line($"Virtual host \"{vhost}\" of {broker.Uri.Host}: publish resyncs to exchange {Queues.ResyncExchange} there, and read the answers in {Queues.ResyncResults}.");
        Output.Table(["origin host", "replica", "queue", "waiting", "consumers", "in _error", "files behind"],
            rows.Select(r => (IReadOnlyList<string>)[r.OriginHost, r.Replica, r.Queue, $"{r.State.Messages:N0}", $"{r.State.Consumers:N0}", $"{r.Errors:N0}", $"{r.FilesBehind:N0}"]));
        Output.Table(["inventory queue", "waiting", "consumers"],
            InventoryQueues.Select(q => (IReadOnlyList<string>)[q, $"{queues[q].Messages:N0}", $"{queues[q].Consumers:N0}"]));
    }
}
