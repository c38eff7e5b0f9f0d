using MassTransit;
using Xtelemdb.Hosting;

namespace Xtelemdb.Watcher;

/// <summary>
/// The queue on which a host's watcher hears of the lists the inventory could not record. Durable and
/// one per host, not one per process: a fault published while the watcher's connection is down (a
/// broker restart, a lost node) waits for it, where a queue deleted with the connection would drop it
/// and the file would go unrecorded until it changed. Unused for a week (the host retired), it expires.
/// </summary>
public sealed class WatcherFaultsEndpoint(string host) : IEndpointDefinition
{
    public static readonly TimeSpan UnusedExpiry = TimeSpan.FromDays(7);

    public static string QueueName(string host) => Queues.OfHost("watcher", host, "faults");

    public string GetEndpointName(IEndpointNameFormatter formatter) => QueueName(host);

    public bool IsTemporary => false;
    public int? PrefetchCount => null;
    public int? ConcurrentMessageLimit => null;
    public bool ConfigureConsumeTopology => true;

    public void Configure<T>(T configurator, IRegistrationContext? context) where T : IReceiveEndpointConfigurator
    {
        QueueLabels.Apply(configurator, new Dictionary<string, object>
        {
            [Queues.DescriptionArgument] = $"lists of {host}'s observations the inventory could not record, for its watcher to report again, and files its database refuses for good, for the watcher to list for verify; kept while it is away, expires unused for {UnusedExpiry.TotalDays:0} days",
        });
        if (configurator is IRabbitMqReceiveEndpointConfigurator rabbit)
            rabbit.QueueExpiration = UnusedExpiry;
    }
}
