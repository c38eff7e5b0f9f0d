using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Inventory;
using Xtelemdb.Replicator;
using Xtelemdb.Watcher;

namespace Xtelemdb.Cli;

/// <summary>The services a process runs: any of them alone, or all three (the all-in-one mode).</summary>
[Flags]
public enum PipelineServices
{
    Watcher = 1,
    Inventory = 2,
    Replicator = 4,
    All = Watcher | Inventory | Replicator,
}

public static class PipelineHost
{
    /// <summary>Builds the host that production runs and the tests start.</summary>
    public static IHost Create(XtelemdbSettings settings, PipelineServices services, Action<IServiceCollection>? configure = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
            console.UseUtcTimestamp = true;
        });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("MassTransit", LogLevel.Warning);
        if (services.HasFlag(PipelineServices.Inventory))
            builder.Services.AddInventory(settings);
        if (services.HasFlag(PipelineServices.Replicator))
            builder.Services.AddReplicator(settings);
        if (services.HasFlag(PipelineServices.Watcher))
            builder.Services.AddWatcher(settings);
        builder.Services.AddPipelineBus(settings);
        configure?.Invoke(builder.Services);
        return builder.Build();
    }
}
