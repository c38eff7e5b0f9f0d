using MassTransit;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Inventory.Consumers;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

public static class InventoryRegistration
{
    /// <summary>The inventory: its database, its start-up work and its consumers. Call before AddPipelineBus.</summary>
    public static IServiceCollection AddInventory(this IServiceCollection services, XtelemdbSettings settings)
    {
        services.TryAddSingleton(settings);
        services.AddInventoryStore(settings.Database);
        services.TryAddSingleton<CopyRecorder>();
        services.TryAddSingleton<OriginRecorder>();
        services.TryAddSingleton<RefusedObservations>();
        services.TryAddSingleton<ResyncAnswers>();
        services.AddHostedService<InventoryStartup>();
        services.AddHostedService<BacklogSampler>();
        return services.AddBusPart(new InventoryBusPart());
    }

    sealed class InventoryBusPart : IBusPart
    {
        public void AddConsumers(IBusRegistrationConfigurator bus)
        {
            bus.AddConsumer<UpsertOriginsConsumer, UpsertOriginsConsumerDefinition>();
            bus.AddConsumer<UpsertOriginListConsumer, UpsertOriginListConsumerDefinition>();
            bus.AddConsumer<MarkUnseenMissingConsumer, MarkUnseenMissingConsumerDefinition>();
            bus.AddConsumer<RecordSkippedConsumer, RecordSkippedConsumerDefinition>();
            bus.AddConsumer<RecordReplicaConsumer, RecordReplicaConsumerDefinition>();
            bus.AddConsumer<RecordReplicaListConsumer, RecordReplicaListConsumerDefinition>();
            bus.AddConsumer<ResyncConsumer, ResyncConsumerDefinition>();
            bus.AddConsumer<BackfillReplicaConsumer, BackfillReplicaConsumerDefinition>();
        }

        public void ConfigureEndpoints(IBusRegistrationContext context, IBusFactoryConfigurator bus)
        {
        }
    }
}
