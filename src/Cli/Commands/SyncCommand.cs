using System.CommandLine;
using Xtelemdb.Cli.Operations;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Cli.Commands;

public static class SyncCommand
{
    public static Command Create()
    {
        var continuous = new Option<bool>("--continuous") { Description = "Run watcher, inventory and replicator in this one process until stopped (the all-in-one mode)" };
        var stall = new Option<string>("--stall-timeout") { Description = "Give up when the backlog has not moved for this long", DefaultValueFactory = _ => "10m" };
        var json = XtelemdbCommand.Json();
        var listen = XtelemdbCommand.Listen();
        var filter = BacklogFilter.Create();
        var command = new Command("sync", "Copy every file a replica lacks and wait until done; with continuous=true, keep the replicas in sync") { continuous, stall, json, listen };
        filter.AddTo(command);
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            if (result.GetValue(continuous))
                return await RunCommand.RunAsync(XtelemdbCommand.WithListen(settings, result.GetValue(listen)), PipelineServices.All, cancellationToken);
            if (!Durations.TryParse(result.GetValue(stall)!, out var stallTimeout))
                throw new UsageException($"--stall-timeout: expected a duration such as \"30s\" or \"10m\", got \"{result.GetValue(stall)}\"");

            await using var session = await OperatorSession.StartWithBusAsync(settings, cancellationToken);
            var request = await filter.RequestAsync(result, session.Store, settings, cancellationToken);
            int? replicaId = request.Replica is { } name ? (await session.Store.FindReplicaAsync(name, settings.Host, cancellationToken))!.Id : null;
            var report = await Output.WithProgressAsync("Syncing", progress =>
                BacklogDrain.RunAsync(session, request, replicaId, stallTimeout, progress, cancellationToken));
            Print(report, result.GetValue(json));
            return report.Drained ? XtelemdbCommand.Done : XtelemdbCommand.Failed;
        }));
        return command;
    }

    static void Print(SyncReport report, bool json)
    {
        if (json)
        {
            Output.WriteJson(report);
            return;
        }
        if (report.Drained)
        {
            Output.Line($"In sync: {report.FilesCopied:N0} files copied.");
            return;
        }
        Output.Line($"Not in sync: {report.FilesBehind:N0} files ({Output.Bytes(report.BytesBehind)}) still behind"
            + (report.Stalled is null ? "." : $"; {report.Stalled}."));
        if (report.Failures.Count > 0)
            Output.Table(["replica", "host", "path", "why"], report.Failures.Select(f => (IReadOnlyList<string>)[f.Replica, f.OriginHost, f.OriginPath, f.Reason]));
    }
}
