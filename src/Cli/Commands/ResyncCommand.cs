using System.CommandLine;

namespace Xtelemdb.Cli.Commands;

/// <summary>The filters shared by sync and resync: which part of the backlog to rebuild.</summary>
public sealed record BacklogFilter(Option<string?> Replica, Option<string?> Host, Option<string?> Prefix)
{
    public static BacklogFilter Create() => new(
        new Option<string?>("--replica") { Description = "Only this replica (its URL or local folder)" },
        new Option<string?>("--host") { Description = "Only files of this origin host" },
        new Option<string?>("--prefix") { Description = "Only origin paths that start with this, e.g. /opt/MagAOX/telem" });

    public void AddTo(Command command)
    {
        command.Options.Add(Replica);
        command.Options.Add(Host);
        command.Options.Add(Prefix);
    }

    /// <summary>The request, with the replica (if named) as registered: its name says the host.</summary>
    public async Task<ResyncRequested> RequestAsync(ParseResult result, Storage.InventoryStore store, Hosting.Settings.XtelemdbSettings settings, CancellationToken cancellationToken) => new()
    {
        Replica = result.GetValue(Replica) is { } named ? (await XtelemdbCommand.FindReplicaAsync(store, settings, named, cancellationToken)).Name : null,
        OriginHost = result.GetValue(Host),
        PathPrefix = result.GetValue(Prefix),
    };
}

public static class ResyncCommand
{
    public static Command Create()
    {
        var filter = BacklogFilter.Create();
        var command = new Command("resync", "Ask the inventory to rebuild the backlog from the database, and return at once");
        filter.AddTo(command);
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, async settings =>
        {
            await using var session = await OperatorSession.StartWithBusAsync(settings, cancellationToken);
            var request = await filter.RequestAsync(result, session.Store, settings, cancellationToken);
            await session.Bus.Publish(request, cancellationToken);
            Output.Line($"Resync requested: replica {request.Replica ?? "(all)"}, host {request.OriginHost ?? "(all)"}, path prefix {request.PathPrefix ?? "(all)"}");
            return XtelemdbCommand.Done;
        }));
        return command;
    }
}
