using System.CommandLine;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Sftp;

namespace Xtelemdb.Cli.Commands;

/// <summary>Accepts an SSH host's key into known_hosts after showing its fingerprint, as ssh-keyscan plus a look would.</summary>
public static class TrustHostCommand
{
    public static Command Create()
    {
        var host = new Option<string>("--host") { Description = "The SSH host, as in the replica URL (~/.ssh/config Host entries apply)", Required = true };
        var port = new Option<int?>("--port") { Description = "Its port (default: ~/.ssh/config, then 22)" };
        var knownHosts = new Option<string?>("--known-hosts") { Description = "The file to add the key to (default: ~/.ssh/known_hosts)" };
        var yes = new Option<bool>("--yes") { Description = "Do not ask: trust the key shown" };
        var command = new Command("trust-host", "Show an SSH host's key fingerprint and add it to known_hosts") { host, port, knownHosts, yes };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async _ =>
        {
            var name = result.GetValue(host)!;
            var endpoint = SshEndpoint.Resolve(new SshReplicaSettings(new SshUrl(null, name, result.GetValue(port), ".")) { KnownHosts = result.GetValue(knownHosts) });
            var (type, key) = await SftpConnector.FetchHostKeyAsync(endpoint.HostName, endpoint.Port, cancellationToken);
            var file = endpoint.KnownHostsFiles[0];
            var status = KnownHosts.Check(endpoint.KnownHostsFiles, endpoint.HostName, endpoint.Port, type, key);
            Output.Line($"{endpoint.HostName}:{endpoint.Port} sends {type} {KnownHosts.Fingerprint(key)}");
            if (status == HostKeyStatus.Known)
            {
                Output.Line($"Already trusted in {file}; nothing changed.");
                return XtelemdbCommand.Done;
            }
            if (status is HostKeyStatus.Changed or HostKeyStatus.Revoked)
                throw new UsageException($"{file} lists another {type} key for {endpoint.HostName} (or revokes this one): remove that line by hand if the change is expected");
            if (!result.GetValue(yes) && !Output.Confirm($"Trust it and add it to {file}? Type 'yes': "))
                throw new UsageException("not confirmed: nothing changed");
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
            await File.AppendAllTextAsync(file, KnownHosts.Line(endpoint.HostName, endpoint.Port, type, key) + "\n", cancellationToken);
            Output.Line($"Added to {file}.");
            return XtelemdbCommand.Done;
        }));
        return command;
    }
}
