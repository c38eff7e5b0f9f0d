using RabbitMQ.Client;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Hosting;

/// <summary>A RabbitMQ.Client connection to the broker, for what the bus does not do: to a node that answers, in RabbitMQ.Client's shuffled order.</summary>
public static class BrokerConnection
{
    public static Task<IConnection> OpenAsync(BrokerSettings broker, string name, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory
        {
            Uri = broker.Uri, UserName = broker.User, Password = broker.Password, ClientProvidedName = name,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
        };
        var tls = broker.Uri.Scheme == "amqps";
        var endpoints = broker.Nodes.Select(node => new AmqpTcpEndpoint(node.Host, node.Port, new SslOption(node.Host, enabled: tls))).ToList();
        return factory.CreateConnectionAsync(endpoints, cancellationToken);
    }
}
