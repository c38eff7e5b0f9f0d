using System.CommandLine;

namespace Xtelemdb.Cli.Commands;

public static class ReplicaListCommand
{
    public static Command Create()
    {
        var json = XtelemdbCommand.Json();
        var command = new Command("replica-list", "One row per replica: files in sync and behind, bytes behind, oldest file behind, last copy") { json };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            await using var session = await OperatorSession.StartAsync(settings, cancellationToken);
            var replicas = await session.Store.ReplicaStatusAsync(cancellationToken);
            if (result.GetValue(json))
            {
                Output.WriteJson(replicas);
                return XtelemdbCommand.Done;
            }
            Output.Table(["replica", "kind", "in sync", "behind", "bytes behind", "oldest behind", "last copy", "enabled"],
                replicas.Select(r => (IReadOnlyList<string>)[r.Url, r.Kind, $"{r.FilesInSync:N0}", $"{r.FilesBehind:N0}", Output.Bytes(r.BytesBehind),
                    Output.Age(r.OldestBehind), r.LastCopy is { } last ? $"{last:yyyy-MM-dd HH:mm:ss}Z" : "-", r.Enabled ? "yes" : "no"]));
            return XtelemdbCommand.Done;
        }));
        return command;
    }
}
