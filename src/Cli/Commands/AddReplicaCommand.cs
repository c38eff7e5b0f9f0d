using System.CommandLine;
using Xtelemdb.Cli.Operations;
using Xtelemdb.Hosting.Selection;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Commands;

public static class AddReplicaCommand
{
    public static Command Create()
    {
        var prefix = new Option<string>("--prefix") { Description = "Where the copies go: a local folder, or a path on the SSH host", Required = true };
        var host = new Option<string?>("--host") { Description = "An SSH host: the replica is its folder ssh://HOST/PREFIX" };
        var local = new Option<bool?>("--local") { Description = "A folder of this host (or mounted here); the default without --host" };
        var import = new Option<bool>("--import-origins") { Description = "First enroll the backup already under the prefix, so nothing in it is copied again" };
        var hosts = new Option<string[]>("--hosts") { Description = "Only the files of these origin hosts (comma-separated or repeated; default: all)" };
        var include = new Option<string[]>("--include") { Description = "Only paths matching one of these patterns, such as /opt/MagAOX/telem/** (repeatable)" };
        var exclude = new Option<string[]>("--exclude") { Description = "No path matching one of these patterns, such as *.tmp (repeatable)" };
        var json = XtelemdbCommand.Json();
        var command = new Command("add-replica",
            "Register a replica (or change what it selects) and write its marker; the running pipeline back-fills it. "
            + "--hosts, --include and --exclude together replace its selection; without any of them it is kept")
            { prefix, host, local, import, hosts, include, exclude, json };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            var url = UrlOf(result.GetValue(prefix)!, result.GetValue(host), result.GetValue(local));
            var kind = ReplicaUrls.IsSsh(url) ? "ssh" : "local";
            string replicaHost = settings.Host;
            if (kind == "ssh")
                replicaHost = SshUrl.TryParse(url, out var ssh, out var error) ? ssh.Host : throw new UsageException($"replica {url}: {error}");
            var named = new[] { hosts, include, exclude }.Any(o => result.GetResult(o) is not null);
            var selection = named ? SelectionOf(result.GetValue(hosts), result.GetValue(include), result.GetValue(exclude)) : null;

            await using var session = await OperatorSession.StartWithBusAsync(settings, cancellationToken);
            var before = (await session.Store.ReplicasAsync(cancellationToken)).FirstOrDefault(r => r.Host == replicaHost && r.Url == url);
            selection ??= before?.Selection ?? settings.Replica(replicaHost, url)?.Selection ?? ReplicaSelection.Everything;
            var record = new ReplicaRecord { Url = url, Kind = kind, Host = replicaHost, Enabled = true, Hosts = selection.Hosts?.ToArray(), Include = [.. selection.Include], Exclude = [.. selection.Exclude] };
            var replicaTarget = ReplicaTargetFactory.Create(record.SettingsIn(settings), settings.Host);
            using var _ = replicaTarget as IDisposable;
            // Reached before anything is recorded: an unknown host key or a missing folder is said now, not later in a log.
            if (!await FolderExistsAsync(replicaTarget, cancellationToken))
                throw new UsageException($"the replica folder {url} does not exist");
            // The replica's root is this folder from now on: a replicator writes nowhere the marker is missing.
            await replicaTarget.WriteMarkerAsync(ReplicaMarker.Content(record.Name), cancellationToken);

            var replica = await session.Store.RegisterReplicaAsync(replicaHost, url, kind, enabled: true, selection, cancellationToken);

            ImportReport? imported = null;
            if (result.GetValue(import))
                imported = await Output.WithProgressAsync($"Importing {replica.Name}", report => BackupImport.RunAsync(session.Store, replica.Id, replicaTarget, report, cancellationToken));
            // Always: the back-fill is computed from the database and asks only for what is missing, so running
            // add_replica again mends a back-fill whose announcement was lost.
            await session.Bus.Publish(new ReplicaAdded { ReplicaId = replica.Id, ReplicaUrl = replica.Name }, cancellationToken);
            await session.Store.BackfillAnnouncedAsync(replica.Id, cancellationToken);

            if (result.GetValue(json))
            {
                Output.WriteJson(new
                {
                    replica = new { replica.Id, replica.Url, replica.Kind, replica.Host, replica.Name, selection.Hosts, selection.Include, selection.Exclude },
                    added = before is null, enabled = before is { Enabled: false }, changed = replica.Changed, imported,
                });
                return XtelemdbCommand.Done;
            }
            Output.Line(before is null ? $"Replica {replica.Name} added (id {replica.Id}); the pipeline back-fills it."
                : !before.Enabled ? $"Replica {replica.Name} (id {replica.Id}) was disabled and is enabled again; the pipeline back-fills it."
                : replica.Changed ? $"Replica {replica.Name} (id {replica.Id}) now selects {selection}; newly selected files are back-filled, deselected ones keep their copies."
                : $"Replica {replica.Name} is already registered (id {replica.Id}); nothing changed; whatever it lacks is asked for again.");
            var count = await session.Store.SelectionCountAsync(replica.Id, cancellationToken);
            Output.Line($"Selection: {selection}: {count.Selected:N0} of the {count.Present:N0} present files. Marker {ReplicaMarker.FileName} written at its root.");
            if (count.UnknownHosts.Length > 0)
                Output.Line($"Warning: no file of {string.Join(", ", count.UnknownHosts)} is known yet (a misspelt host?).");
            if (count.Selected == 0 && count.Present > 0)
                Output.Line("Warning: the selection picks none of the present files; patterns are anchored at / unless they have no slash (as in .gitignore).");
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

    static ReplicaSelection SelectionOf(string[]? hosts, string[]? include, string[]? exclude)
    {
        try
        {
            var hostList = hosts?.SelectMany(h => h.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
            return new ReplicaSelection(hostList, include ?? [], exclude ?? []);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"the replica's selection: {e.Message}");
        }
    }

    /// <summary>host=popeye prefix=ceph/magao-x/ is ssh://popeye/ceph/magao-x (relative to the login's home); prefix=/data is ssh://popeye//data.</summary>
    static string UrlOf(string prefix, string? host, bool? local)
    {
        if (host is null)
        {
            if (ReplicaUrls.IsSsh(prefix))
                return local == true ? throw new UsageException("an ssh:// replica cannot be local=true") : ReplicaUrls.Normalize(prefix);
            if (local == false)
                throw new UsageException("local=false needs host=HOST: an SSH replica");
            // A local replica is a folder of this host; another host's is added on that host (or reached with host=, over SFTP).
            if (ReplicaUrls.TrySplitHostPath(prefix, out var other, out _))
                throw new UsageException($"prefix={prefix} names a folder of {other}: run add_replica on {other}, or give host={other} to reach it over SFTP");
            return ReplicaUrls.Normalize(Path.GetFullPath(prefix));
        }
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
