using System.CommandLine;
using Xtelemdb.Cli.Operations;
using Xtelemdb.Replicator.Copying;

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
            var replicaSettings = XtelemdbCommand.ReplicaSettings(settings, url);
            var replicaTarget = ReplicaTargetFactory.Create(replicaSettings, connections: 1);
            using var _ = replicaTarget as IDisposable;
            // Reached before anything is recorded: an unknown host key or a missing folder is said now, not later in a log.
            if (!await FolderExistsAsync(replicaTarget, cancellationToken))
                throw new UsageException($"the replica folder {url} does not exist");

            await using var session = await OperatorSession.StartAsync(settings, cancellationToken);
            var before = await session.Store.FindReplicaAsync(url, cancellationToken);
            var replica = await session.Store.RegisterReplicaAsync(url, replicaSettings.Kind, enabled: true, cancellationToken);
            var changed = before is null || !before.Enabled;

            ImportReport? imported = null;
            if (result.GetValue(import))
                imported = await Output.WithProgressAsync($"Importing {url}", report => BackupImport.RunAsync(session.Store, replica.Id, replicaTarget, report, cancellationToken));
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

    /// <summary>host=popeye prefix=ceph/magao-x/ is ssh://popeye/ceph/magao-x (relative to the login's home); prefix=/data is ssh://popeye//data.</summary>
    static string UrlOf(string prefix, string? host, bool? local)
    {
        if (host is null)
            return local == false ? throw new UsageException("local=false needs host=HOST: an SSH replica") : XtelemdbCommand.ReplicaUrl(prefix);
        if (local == true)
            throw new UsageException("host= names an SSH replica, which cannot be local=true");
        return ReplicaUrls.Normalize($"{ReplicaUrls.SshScheme}{host}/{prefix}");
    }

    static async Task<bool> FolderExistsAsync(IReplicaTarget target, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var _ in target.ListAsync(await target.PrefixAsync(cancellationToken), cancellationToken))
                break;
            return true;
        }
        catch (Exception e) when (e is DirectoryNotFoundException or Renci.SshNet.Common.SftpPathNotFoundException)
        {
            return false;
        }
    }
}
