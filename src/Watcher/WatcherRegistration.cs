using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Watcher;

public static class WatcherRegistration
{
    /// <summary>The watcher of this host's roots: it publishes, and hears of the lists the inventory could not record. Call before AddPipelineBus.</summary>
    public static IServiceCollection AddWatcher(this IServiceCollection services, XtelemdbSettings settings)
    {
        services.TryAddSingleton(settings);
        services.AddSingleton<FileWatchService>();
        services.AddHostedService(provider => provider.GetRequiredService<FileWatchService>());
        return services.AddBusPart(new WatcherBusPart(settings.Host));
    }

    sealed class WatcherBusPart(string host) : IBusPart
    {
        public void AddConsumers(IBusRegistrationConfigurator bus) =>
            bus.AddConsumer<RecheckFaultedConsumer>().ExcludeFromConfigureEndpoints();

        /// <summary>
        /// Every watcher's queue is bound to the faults of every FilesChanged; each takes its own host's.
        /// A fault published while no watcher of that host runs is dropped: its start-up scan reports every file.
        /// </summary>
        public void ConfigureEndpoints(IBusRegistrationContext context, IBusFactoryConfigurator bus) =>
            bus.ReceiveEndpoint(new ProcessEndpointDefinition("watcher", host, "faults",
                    $"lists of {host}'s observations the inventory could not record, for the watcher on {host} to report again; deleted when it stops"),
                KebabCaseEndpointNameFormatter.Instance,
                endpoint => endpoint.ConfigureConsumer<RecheckFaultedConsumer>(context));
    }
}
