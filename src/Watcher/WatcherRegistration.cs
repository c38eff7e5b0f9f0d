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
        public void AddConsumers(IBusRegistrationConfigurator bus)
        {
            bus.AddConsumer<RecheckFaultedConsumer>().ExcludeFromConfigureEndpoints();
            bus.AddConsumer<ListRefusedConsumer>().ExcludeFromConfigureEndpoints();
        }

        /// <summary>
        /// Every host's watcher queue is bound to the faults of every FilesChanged, and to every FilesRefused; each takes its own host's.
        /// A fault published while its watcher is away waits in the queue; a watcher started anew also reports every file in its scan.
        /// </summary>
        public void ConfigureEndpoints(IBusRegistrationContext context, IBusFactoryConfigurator bus) =>
            bus.ReceiveEndpoint(new WatcherFaultsEndpoint(host), KebabCaseEndpointNameFormatter.Instance, endpoint =>
            {
                endpoint.ConfigureConsumer<RecheckFaultedConsumer>(context);
                endpoint.ConfigureConsumer<ListRefusedConsumer>(context);
            });
    }
}
