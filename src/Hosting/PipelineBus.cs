using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Hosting;

public static class PipelineBus
{
    public static IServiceCollection AddBusPart(this IServiceCollection services, IBusPart part) =>
        services.AddSingleton(part);

    /// <summary>Registers MassTransit on RabbitMQ with the parts of every service added before this call.</summary>
    public static IServiceCollection AddPipelineBus(this IServiceCollection services, XtelemdbSettings settings)
    {
        var parts = Parts(services);
        services.AddHostedService<BusWatchdog>();
        // Before MassTransit's own hosted service: the queues say what they are whoever declares them next.
        services.AddSingleton(provider => new QueueLabels(settings.Broker, provider.GetRequiredService<ILogger<QueueLabels>>(),
            provider.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>()));
        services.AddHostedService(provider => provider.GetRequiredService<QueueLabels>());
        services.AddSingleton<ReplicaNeeds>();
        // MassTransit starts in the background, retrying the broker; BusStartup, after it, holds the
        // start-up (boundedly) until the queues are declared and bound, so nothing published right after is lost.
        services.Configure<MassTransitHostOptions>(options =>
        {
            options.WaitUntilStarted = false;
            options.StopTimeout = TimeSpan.FromSeconds(30);
        });
        services.AddMassTransit(bus =>
        {
            AddConsumers(bus, parts);
            bus.UsingRabbitMq((context, rabbit) =>
            {
                rabbit.Host(settings.Broker.Uri, host =>
                {
                    host.Username(settings.Broker.User);
                    host.Password(settings.Broker.Password);
                    host.ConnectionName($"xtelemdb {settings.Host}");
                    // Each connection attempt goes to the next node: a node lost sends the bus to another.
                    if (settings.Broker.Nodes.Count > 1)
                        host.UseCluster(cluster =>
                        {
                            foreach (var node in settings.Broker.Nodes)
                                cluster.Node(node.ToString());
                        });
                });
                QueueLabels.SetQueueType(rabbit, settings.Broker.QueueType);
                QueueLabels.LabelErrorQueues(rabbit);
                ConfigureEndpoints(context, rabbit, parts);
            });
        });
        return services.AddHostedService<BusStartup>();
    }

    /// <summary>The same registration on MassTransit's in-memory test harness.</summary>
    public static IServiceCollection AddPipelineTestHarness(this IServiceCollection services)
    {
        var parts = Parts(services);
        services.AddSingleton(provider => QueueLabels.None(provider.GetRequiredService<ILogger<QueueLabels>>()));
        services.AddSingleton<ReplicaNeeds>();
        return services.AddMassTransitTestHarness(bus =>
        {
            AddConsumers(bus, parts);
            bus.UsingInMemory((context, memory) => ConfigureEndpoints(context, memory, parts));
        });
    }

    static IBusPart[] Parts(IServiceCollection services) =>
        services.Where(d => d.ServiceType == typeof(IBusPart)).Select(d => (IBusPart)d.ImplementationInstance!).ToArray();

    static void AddConsumers(IBusRegistrationConfigurator bus, IBusPart[] parts)
    {
        bus.SetKebabCaseEndpointNameFormatter();
        foreach (var part in parts)
            part.AddConsumers(bus);
    }

    static void ConfigureEndpoints<T>(IBusRegistrationContext context, IBusFactoryConfigurator<T> bus, IBusPart[] parts)
        where T : IReceiveEndpointConfigurator
    {
        foreach (var part in parts)
            part.ConfigureEndpoints(context, bus);
        bus.ConfigureEndpoints(context);
    }
}
