using System.CommandLine;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Cli.Commands;

/// <summary>
/// The xtelemdb command line. Exit codes: 0 done, 1 failed or something is wrong (verify, sync),
/// 2 bad usage or configuration.
/// </summary>
public static class XtelemdbCommand
{
    public const int Done = 0, Failed = 1, BadUsage = 2;

    public static readonly Option<string?> Config = new("--config")
    {
        Description = "The TOML file (default: ./xtelemdb.toml, then /etc/xtelemdb/xtelemdb.toml, then built-in defaults)",
        Recursive = true,
    };

    /// <summary>Where a long-running service serves /health and /metrics; overrides [monitoring] listen.</summary>
    public static Option<string?> Listen() => new("--listen")
    {
        Description = "Serve /health and /metrics at this address and port, such as 127.0.0.1:9400 (default: [monitoring] listen)",
    };

    /// <summary>The settings with --listen, when given, in place of [monitoring] listen.</summary>
    public static XtelemdbSettings WithListen(XtelemdbSettings settings, string? listen)
    {
        if (listen is null)
            return settings;
        if (!MonitoringSettings.TryParseListen(listen, out var endpoint))
            throw new UsageException($"--listen: expected an address and port such as 127.0.0.1:9400, got \"{listen}\"");
        return settings with { Monitoring = settings.Monitoring with { Listen = endpoint } };
    }

    public static Option<bool> Json() => new("--json") { Description = "Print records as JSON, for scripts" };

    public static RootCommand Create()
    {
        var root = new RootCommand("xtelemdb keeps backup replicas of instrument data files in sync")
        {
            Options = { Config },
            Subcommands =
            {
                AddReplicaCommand.Create(),
                RemoveReplicaCommand.Create(),
                ReplicaListCommand.Create(),
                SyncCommand.Create(),
                ResyncCommand.Create(),
                VerifyCommand.Create(),
                PurgeableCommand.Create(),
                RunCommand.Create(),
                TrustHostCommand.Create(),
                MigrateCommand.Create(),
                HealthCommand.Create(),
            },
        };
        // The original Python tool spells commands with underscores: add_replica, replica_list.
        foreach (var command in root.Subcommands.Where(c => c.Name.Contains('-')))
            command.Aliases.Add(command.Name.Replace('-', '_'));
        return root;
    }

    /// <summary>Loads the settings, runs the action, and turns the errors an operator can fix into exit code 2.</summary>
    public static async Task<int> WithSettings(ParseResult result, Func<XtelemdbSettings, Task<int>> action)
    {
        try
        {
            return await action(SettingsLoader.Load(result.GetValue(Config)));
        }
        catch (SettingsException e)
        {
            Output.Error(e.Message);
            return BadUsage;
        }
        catch (Replicator.Sftp.SshReplicaException e)
        {
            Output.Error(e.Message);
            return Failed;
        }
        catch (UsageException e)
        {
            Output.Error(e.Message);
            return BadUsage;
        }
        catch (Hosting.QueueTypeMismatchException e)
        {
            // The configuration and the broker disagree: a restart would only find it again.
            Output.Error(e.Message);
            return BadUsage;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // An operator reads one line that says what failed; the stack trace helps nobody at a terminal.
            Output.Error($"{e.Message} ({e.GetType().Name})");
            return Failed;
        }
    }

    /// <summary>A replica named on the command line: an ssh:// URL or "host:/path" as it is, a local folder made absolute.</summary>
    public static string ReplicaName(string text) =>
        text.Contains("://", StringComparison.Ordinal) || ReplicaUrls.TrySplitHostPath(text, out _, out _) ? text : ReplicaUrls.Normalize(Path.GetFullPath(text));

    /// <summary>A replica named on the command line: a bare path is this host's folder, else the one host's that has it.</summary>
    public static async Task<Storage.ReplicaRecord> FindReplicaAsync(Storage.InventoryStore store, XtelemdbSettings settings, string text, CancellationToken cancellationToken)
    {
        try
        {
            return await store.FindReplicaAsync(ReplicaName(text), settings.Host, cancellationToken)
                ?? throw new UsageException($"no replica {ReplicaName(text)} is registered; see 'xtelemdb replica_list'");
        }
        catch (Storage.AmbiguousReplicaException e)
        {
            throw new UsageException(e.Message);
        }
    }
}

/// <summary>An operator's request that cannot be carried out as given; exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
