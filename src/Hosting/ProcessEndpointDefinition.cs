using MassTransit;

namespace Xtelemdb.Hosting;

/// <summary>
/// A queue that lives as long as one process (auto-deleted), named and labelled for what it is:
/// "replicator-exao1-replica-set-3f2a9c", not MassTransit's "exao1_xtelemdb_replicator_w7eoyyb9…".
/// </summary>
public sealed class ProcessEndpointDefinition(string service, string host, string purpose, string description) : IEndpointDefinition
{
    readonly string name = Queues.OfProcess(service, host, purpose);

    public string GetEndpointName(IEndpointNameFormatter formatter) => name;

    public bool IsTemporary => true;
    public int? PrefetchCount => null;
    public int? ConcurrentMessageLimit => null;
    public bool ConfigureConsumeTopology => true;

    public void Configure<T>(T configurator, IRegistrationContext? context) where T : IReceiveEndpointConfigurator =>
        QueueLabels.Apply(configurator, new Dictionary<string, object> { [Queues.DescriptionArgument] = description });
}
