using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Consumers;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Replicator;

public static class ReplicatorRegistration
{
    /// <summary>The replicator of this host: one queue per enabled replica of the TOML file. Call before AddPipelineBus.</summary>
    public static IServiceCollection AddReplicator(this IServiceCollection services, XtelemdbSettings settings)
    {
        services.TryAddSingleton(settings);
        services.AddSingleton<ReplicaCopier>();
        return services.AddBusPart(new ReplicatorBusPart(settings));
    }

    sealed class ReplicatorBusPart(XtelemdbSettings settings) : IBusPart
    {
        public void AddConsumers(IBusRegistrationConfigurator bus) =>
            bus.AddConsumer<CopyFileConsumer, CopyFileConsumerDefinition>().ExcludeFromConfigureEndpoints();

        public void ConfigureEndpoints(IBusRegistrationContext context, IBusFactoryConfigurator bus)
        {
            foreach (var replica in settings.Replicas.Where(r => r.Enabled))
            {
                bus.ReceiveEndpoint(ReplicaQueues.Name(settings.Host, replica.Url), endpoint =>
                {
                    endpoint.ConcurrentMessageLimit = settings.Replicator.Concurrency;
                    endpoint.PrefetchCount = settings.Replicator.Concurrency * 2;
                    endpoint.ConfigureConsumer<CopyFileConsumer>(context);
                });
            }
        }
    }
}
