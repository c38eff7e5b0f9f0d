using System.CommandLine;

namespace Xtelemdb.Cli.Commands;

public static class RemoveReplicaCommand
{
    public static Command Create()
    {
        var replicaOption = new Option<string>("--replica", "--prefix") { Description = "The replica: its URL or local folder", Required = true };
        var purge = new Option<bool>("--purge") { Description = "Also forget its records (asks first); never deletes a file on the replica" };
        var yes = new Option<bool>("--yes") { Description = "Do not ask before --purge" };
        var command = new Command("remove-replica", "Stop replicating to a replica; its records and files stay") { replicaOption, purge, yes };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            await using var session = await OperatorSession.StartWithBusAsync(settings, cancellationToken);
            var replica = await XtelemdbCommand.FindReplicaAsync(session.Store, settings, result.GetValue(replicaOption)!, cancellationToken);
            var url = replica.Name;
            if (result.GetValue(purge) && !result.GetValue(yes) && !Output.Confirm($"Forget replica {url} and every record of its copies? The files stay. Type 'yes': "))
                throw new UsageException("not confirmed: nothing changed (give --yes where nobody can answer)");

            var disabled = await session.Store.DisableReplicaAsync(replica.Id, cancellationToken);
            await session.Bus.Publish(new ReplicaRemoved { ReplicaId = replica.Id, ReplicaUrl = replica.Name }, cancellationToken);
            if (result.GetValue(purge))
            {
                await session.Store.PurgeReplicaAsync(replica.Id, cancellationToken);
                Output.Line($"Replica {url} removed and its records forgotten; no file was deleted.");
            }
            else
            {
                Output.Line(disabled ? $"Replica {url} removed: nothing more is copied to it; its records and files stay."
                    : $"Replica {url} was removed already; nothing changed.");
            }
            return XtelemdbCommand.Done;
        }));
        return command;
    }
}
