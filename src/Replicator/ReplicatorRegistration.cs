using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Consumers;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Replicator.Fixity;
using Xtelemdb.Replicator.ReplicaSet;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator;

public static class ReplicatorRegistration
{
    /// <summary>
    /// The replicator of this host: one queue per (origin host, replica) pair it can serve, for the
    /// replicas of the TOML file and those registered in the database. Call before AddPipelineBus.
    /// </summary>
    public static IServiceCollection AddReplicator(this IServiceCollection services, XtelemdbSettings settings)
    {
        services.TryAddSingleton(settings);
        services.AddInventoryStore(settings.Database);
        services.AddSingleton<ReplicaDirectory>();
        services.AddSingleton<ReplicaEndpoints>();
        services.AddSingleton<CopySlots>();
        services.AddSingleton<ReplicaTargetFactory>();
        services.AddSingleton<ReplicaCopier>();
        services.AddSingleton<ReplicaSetLoader>();
        services.AddHostedService(provider => provider.GetRequiredService<ReplicaSetLoader>());
        services.AddSingleton<ReplicaAvailability>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<FixityCheck>();
        services.AddHostedService<FixityScheduler>();
        services.AddHealthChecks().AddCheck<ReplicaAvailability>("replicas");
        return services.AddBusPart(new ReplicatorBusPart(settings.Host));
    }

    sealed class ReplicatorBusPart(string host) : IBusPart
    {
        public void AddConsumers(IBusRegistrationConfigurator bus)
        {
            // Connected by hand: the copy consumers per replica queue, the other on a queue per instance.
            bus.AddConsumer<CopyFileConsumer, CopyFileConsumerDefinition>().ExcludeFromConfigureEndpoints();
            bus.AddConsumer<CopyFilesConsumer, CopyFilesConsumerDefinition>().ExcludeFromConfigureEndpoints();
            bus.AddConsumer<ReplicaSetConsumer>().ExcludeFromConfigureEndpoints();
        }

        public void ConfigureEndpoints(IBusRegistrationContext context, IBusFactoryConfigurator bus) =>
            bus.ReceiveEndpoint(new ProcessEndpointDefinition("replicator", host, "replica-set",
                    $"replicas added, changed or removed, for the replicator process on {host} to serve; deleted when it stops"),
                KebabCaseEndpointNameFormatter.Instance,
                endpoint =>
                {
                    // Rereads the replica set from the database: a failover is waited out, as the copy queues do.
                    endpoint.UseRetryThroughDatabaseOutages(retry => retry.None());
                    endpoint.ConfigureConsumer<ReplicaSetConsumer>(context);
                });
    }
}
