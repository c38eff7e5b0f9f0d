using System.CommandLine;
using Xtelemdb.Cli.Operations;

namespace Xtelemdb.Cli.Commands;

public static class AddReplicaCommand
{
    public static Command Create()
    {
        var prefix = new Option<string>("--prefix") { Description = "Where the copies go: a local folder, or a path on the SSH host", Required = true };
        var host = new Option<string?>("--host") { Description = "An SSH host: the replica is ssh://HOST/PREFIX" };
        var local = new Option<bool?>("--local") { Description = "A local (or mounted) folder; the default without --host" };
        var import = new Option<bool>("--import-origins") { Description = "First enroll the backup already under the prefix, so nothing in it is copied again" };
        var json = XtelemdbCommand.Json();
        var command = new Command("add-replica", "Register a replica; the running pipeline back-fills it") { prefix, host, local, import, json };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            var url = UrlOf(result.GetValue(prefix)!, result.GetValue(host), result.GetValue(local));
            await using var session = await OperatorSession.StartAsync(settings, cancellationToken);
            var before = await session.Store.FindReplicaAsync(url, cancellationToken);
            var replica = await session.Store.RegisterReplicaAsync(url, "local", enabled: true, cancellationToken);
            var changed = before is null || !before.Enabled;

            ImportReport? imported = null;
            if (result.GetValue(import))
                imported = await Output.WithProgressAsync($"Importing {url}", report => BackupImport.RunAsync(session.Store, replica.Id, url, report, cancellationToken));
            if (changed || imported is { OriginsAdded: > 0 } or { ReplicasAdded: > 0 })
                await session.Bus.Publish(new ReplicaAdded { ReplicaId = replica.Id, ReplicaUrl = replica.Url }, cancellationToken);

            if (result.GetValue(json))
            {
                Output.WriteJson(new { replica = new { replica.Id, replica.Url, replica.Kind }, added = before is null, enabled = changed && before is not null, imported });
                return XtelemdbCommand.Done;
            }
            Output.Line(before is null ? $"Replica {url} added (id {replica.Id}); the pipeline back-fills it."
                : changed ? $"Replica {url} (id {replica.Id}) was disabled and is enabled again; the pipeline back-fills it."
                : $"Replica {url} is already registered (id {replica.Id}); nothing changed.");
            if (imported is not null)
            {
                Output.Line($"Imported {imported.Files:N0} files: {imported.OriginsAdded:N0} new origins, {imported.ReplicasAdded:N0} new replica records.");
                if (imported.Refused > 0)
                    Output.Line($"Refused {imported.Refused:N0}:\n  " + string.Join("\n  ", imported.RefusedExamples));
            }
            return XtelemdbCommand.Done;
        }));
        return command;
    }

    static string UrlOf(string prefix, string? host, bool? local)
    {
        if (host is not null || local == false)
            throw new UsageException(host is null
                ? "local=false needs host=HOST: an SSH replica"
                : "SSH replicas are not supported by this version yet; give a local prefix without host=");
        var url = XtelemdbCommand.ReplicaUrl(prefix);
        return Directory.Exists(url) ? url : throw new UsageException($"the replica folder {url} does not exist");
    }
}
