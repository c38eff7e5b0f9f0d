using System.Collections.Concurrent;
using System.Diagnostics;
using MassTransit;
using Xtelemdb.Hosting;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Operations;

/// <summary>A file that could not be copied, and why.</summary>
public sealed record CopyFailure(string Replica, string OriginHost, string OriginPath, string Reason);

/// <summary>How a sync ended.</summary>
public sealed record SyncReport(bool Drained, long FilesCopied, long FilesBehind, long BytesBehind, IReadOnlyList<CopyFailure> Failures, string? Stalled);

/// <summary>
/// Announces a resync and follows its backlog in the database until it is drained, every file
/// left has failed (the replicators' Fault events say why), or nothing moved for a while.
/// </summary>
public static class BacklogDrain
{
    public static async Task<SyncReport> RunAsync(OperatorSession session, ResyncRequested request, int? replicaId, TimeSpan stallTimeout,
        Action<string> progress, CancellationToken cancellationToken)
    {
        var failures = new ConcurrentDictionary<(string, string, string), CopyFailure>();
        var listener = session.Bus.ConnectReceiveEndpoint(
            new ProcessEndpointDefinition("sync", session.Settings.Host, "failures",
                $"copies that failed, for the 'xtelemdb sync' running on {session.Settings.Host} to report; deleted when it ends"),
            KebabCaseEndpointNameFormatter.Instance, endpoint =>
            {
                void Failed(ReplicaNeeded need, Fault fault)
                {
                    if (Matches(request, need))
                    {
                        var reason = fault.Exceptions.FirstOrDefault()?.Message ?? "unknown";
                        failures[(need.ReplicaUrl, need.OriginHost, need.OriginPath)] = new CopyFailure(need.ReplicaUrl, need.OriginHost, need.OriginPath, reason);
                    }
                }
                endpoint.Handler<Fault<ReplicaNeeded>>(context =>
                {
                    Failed(context.Message.Message, context.Message);
                    return Task.CompletedTask;
                });
                // A list fails whole only when its files could not even be sent back alone.
                endpoint.Handler<Fault<ReplicasNeeded>>(context =>
                {
                    foreach (var need in context.Message.Message.Files)
                        Failed(need, context.Message);
                    return Task.CompletedTask;
                });
            });
        try
        {
            await listener.Ready.WaitAsync(cancellationToken);
            var store = session.Store;
            var start = await store.BacklogSizeAsync(replicaId, request.OriginHost, request.PathPrefix, cancellationToken);
            await session.Bus.Publish(request, cancellationToken);

            var clock = Stopwatch.StartNew();
            var last = start;
            var lastMove = clock.Elapsed;
            while (true)
            {
                BacklogSize now;
                try
                {
                    now = await store.BacklogSizeAsync(replicaId, request.OriginHost, request.PathPrefix, cancellationToken);
                }
                catch (Exception e) when (DatabaseErrors.IsTransient(e) && clock.Elapsed - lastMove < stallTimeout)
                {
                    // A database restarting or failing over: the copies go on meanwhile, and its silence counts towards the stall.
                    progress($"the database does not answer ({e.Message}); asking again");
                    await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
                    continue;
                }
                var copied = Math.Max(0, start.Files - now.Files);
                if (now != last)
                    (last, lastMove) = (now, clock.Elapsed);
                var quiet = clock.Elapsed - lastMove;
                progress($"{copied:N0} of {start.Files:N0} copied, {Output.Rate(copied, clock.Elapsed)}; {now.Files:N0} files ({Output.Bytes(now.Bytes)}) behind"
                    + (failures.IsEmpty ? "" : $", {failures.Count:N0} failed")
                    + (quiet > TimeSpan.FromSeconds(30) ? $"; nothing moved for {quiet.TotalSeconds:0}s: is a replicator running for each host?" : ""));

                if (now.Files == 0)
                    return new SyncReport(true, copied, 0, 0, [.. failures.Values], null);
                if (failures.Count >= now.Files)
                    return new SyncReport(false, copied, now.Files, now.Bytes, [.. failures.Values], null);
                if (quiet >= stallTimeout)
                    return new SyncReport(false, copied, now.Files, now.Bytes, [.. failures.Values], $"nothing moved for {quiet.TotalSeconds:0}s");
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
        finally
        {
            await listener.StopAsync(CancellationToken.None);
        }
    }

    static bool Matches(ResyncRequested request, ReplicaNeeded need) =>
        (request.Replica is null || need.ReplicaUrl == request.Replica)
        && (request.OriginHost is null || need.OriginHost == request.OriginHost)
        && (request.PathPrefix is null || need.OriginPath.StartsWith(request.PathPrefix, StringComparison.Ordinal));
}
