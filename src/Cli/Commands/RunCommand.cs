using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Cli.Commands;

public static class RunCommand
{
    public static Command Create()
    {
        var services = new Argument<PipelineServices[]>("service")
        {
            Description = "Watcher, Inventory, Replicator or All; several may be named",
            Arity = ArgumentArity.OneOrMore,
        };
        var listen = XtelemdbCommand.Listen();
        var command = new Command("run", "Run some of the services in this process, each as on its own host") { services, listen };
        command.SetAction((result, cancellationToken) => XtelemdbCommand.WithSettings(result, settings =>
            RunAsync(XtelemdbCommand.WithListen(settings, result.GetValue(listen)),
                result.GetValue(services)!.Aggregate((PipelineServices)0, (all, s) => all | s), cancellationToken)));
        return command;
    }

    public static async Task<int> RunAsync(XtelemdbSettings settings, PipelineServices services, CancellationToken cancellationToken)
    {
        using var host = PipelineHost.Create(settings, services);
        // Not host.RunAsync: it disposes the host, whose services are read below (SIGTERM ended in ObjectDisposedException).
        await host.StartAsync(cancellationToken);
        await host.WaitForShutdownAsync(cancellationToken);
        // Non-zero when the bus watchdog or a failed service ended the run: the service manager restarts it.
        if (Environment.ExitCode != 0)
            return Environment.ExitCode;
        var failed = host.Services.GetServices<IHostedService>().OfType<BackgroundService>().Any(s => s.ExecuteTask is { IsFaulted: true });
        return failed ? XtelemdbCommand.Failed : XtelemdbCommand.Done;
    }
}
