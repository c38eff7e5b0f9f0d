using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli;

/// <summary>The xtelemdb command line. Exit codes: 0 done, 1 failed, 2 bad usage or configuration.</summary>
public static class Commands
{
    static readonly Option<string?> Config = new("--config")
    {
        Description = "The TOML file (default: ./xtelemdb.toml, then /etc/xtelemdb/xtelemdb.toml, then built-in defaults)",
        Recursive = true,
    };

    public static RootCommand Create()
    {
        var root = new RootCommand("xtelemdb: keeps backup replicas of instrument data files in sync");
        root.Options.Add(Config);
        root.Subcommands.Add(Sync());
        root.Subcommands.Add(Run());
        root.Subcommands.Add(Migrate());
        return root;
    }

    static Command Sync()
    {
        var continuous = new Option<bool>("--continuous")
        {
            Description = "Run watcher, inventory and replicator in this one process until stopped (the all-in-one mode)",
        };
        var command = new Command("sync", "Keep the replicas in sync") { continuous };
        command.SetAction(async (result, cancellationToken) =>
        {
            if (!result.GetValue(continuous))
            {
                await Console.Error.WriteLineAsync("xtelemdb sync: only continuous=true is available in this version; to run one service, see 'xtelemdb run --help'");
                return 2;
            }
            return await WithSettings(result, settings => RunAsync(settings, PipelineServices.All, cancellationToken));
        });
        return command;
    }

    static Command Run()
    {
        var services = new Argument<PipelineServices[]>("service")
        {
            Description = "Watcher, Inventory, Replicator or All; several may be named",
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("run", "Run some of the services in this process, each as on its own host") { services };
        command.SetAction(async (result, cancellationToken) =>
        {
            var chosen = result.GetValue(services)!.Aggregate((PipelineServices)0, (all, s) => all | s);
            return await WithSettings(result, settings => RunAsync(settings, chosen, cancellationToken));
        });
        return command;
    }

    static Command Migrate()
    {
        var command = new Command("migrate", "Create or upgrade the inventory database");
        command.SetAction((result, _) => WithSettings(result, settings =>
        {
            var applied = InventoryDatabase.Migrate(settings.Database);
            Console.WriteLine(applied.Count == 0 ? "The database is up to date." : $"Applied: {string.Join(", ", applied)}");
            return Task.FromResult(0);
        }));
        return command;
    }

    static async Task<int> RunAsync(XtelemdbSettings settings, PipelineServices services, CancellationToken cancellationToken)
    {
        using var host = PipelineHost.Create(settings, services);
        await host.RunAsync(cancellationToken);
        return 0;
    }

    static async Task<int> WithSettings(ParseResult result, Func<XtelemdbSettings, Task<int>> action)
    {
        XtelemdbSettings settings;
        try
        {
            settings = SettingsLoader.Load(result.GetValue(Config));
        }
        catch (SettingsException e)
        {
            await Console.Error.WriteLineAsync($"xtelemdb: {e.Message}");
            return 2;
        }
        return await action(settings);
    }
}
