using System.CommandLine;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli.Commands;

public static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Create or upgrade the inventory database");
        command.SetAction((result, _) => XtelemdbCommand.WithSettings(result, settings =>
        {
            var applied = InventoryDatabase.Migrate(settings.Database, settings.Host);
            Output.Line(applied.Count == 0 ? "The database is up to date." : $"Applied: {string.Join(", ", applied)}");
            return Task.FromResult(XtelemdbCommand.Done);
        }));
        return command;
    }
}
