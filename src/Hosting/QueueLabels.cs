using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Hosting;

/// <summary>
/// Declares the pipeline's queues with arguments that say what each carries, shown on its page in the
/// management UI. RabbitMQ keeps the arguments of a queue's first declaration and ignores keys it does
/// not know on later ones, so a sender declares a queue with its labels before its first send (a
/// consumer's own declaration carries them too): whichever comes first, the queue says what it is.
/// A queue made by an older version keeps no labels until it is deleted; 'replica_list --queues'
/// names every queue either way. Labels are only words: a failure to declare them never stops a send.
/// </summary>
public sealed class QueueLabels(BrokerSettings? broker, ILogger<QueueLabels> logger) : IHostedService, IAsyncDisposable
{
    /// <summary>For the in-memory test harness: no broker, nothing declared.</summary>
    public static QueueLabels None(ILogger<QueueLabels> logger) => new(null, logger);

    readonly ConcurrentDictionary<string, bool> declared = new(StringComparer.Ordinal);
    readonly SemaphoreSlim gate = new(1, 1);
    IConnection? connection;

    /// <summary>How long the start-up waits for the labels: a broker that dies under them must not hold the start for ever.</summary>
    static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The queues every part of the stack uses, declared before the bus starts.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(StartTimeout);
        try
        {
            await EnsureAsync([Queues.FileChanged, Queues.ReplicaUpdated, Queues.ResyncRequested, Queues.BackfillReplica, Queues.ResyncResults], timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A connection left broken is closed by the next declaration that fails on it.
            logger.LogWarning("The broker did not declare the queues' labels in {Timeout}; the bus declares the queues without them", StartTimeout);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task EnsureAsync(IEnumerable<string> queues, CancellationToken cancellationToken) =>
        EnsureAsync(queues.Select(q => (q, Queues.Labels(q))), cancellationToken);

    /// <summary>Declares each queue not yet declared by this process, with its labels.</summary>
    public async Task EnsureAsync(IEnumerable<(string Queue, IReadOnlyDictionary<string, object> Labels)> queues, CancellationToken cancellationToken)
    {
        if (broker is null)
            return;
        var missing = queues.Where(q => !declared.ContainsKey(q.Queue)).ToArray();
        if (missing.Length == 0)
            return;
        await gate.WaitAsync(cancellationToken);
        try
        {
            connection ??= await new ConnectionFactory
            {
                Uri = broker.Uri, UserName = broker.User, Password = broker.Password, ClientProvidedName = "xtelemdb queue labels",
                RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
            }.CreateConnectionAsync(cancellationToken);
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            foreach (var (queue, labels) in missing.Where(q => !declared.ContainsKey(q.Queue)))
            {
                // The same durable, non-exclusive, lasting queue MassTransit declares, so either declaration may come first.
                await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, Arguments(queue, labels), cancellationToken: cancellationToken);
                if (queue == Queues.ResyncResults)
                {
                    // Answers are sent to its exchange, as MassTransit declares one: a send to the queue itself
                    // would declare it without its length limit, which RabbitMQ refuses as a different queue.
                    await channel.ExchangeDeclareAsync(queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
                    await channel.QueueBindAsync(queue, queue, "", cancellationToken: cancellationToken);
                }
                declared[queue] = true;
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogDebug(e, "Could not declare the labels of queues {Queues}; they are declared without them", string.Join(", ", missing.Select(q => q.Queue)));
            await CloseAsync();
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Sends a report written for people (plain JSON) to one of the pipeline's queues, its labels declared first.</summary>
    public async Task SendReportAsync<T>(ISendEndpointProvider provider, string queue, Uri address, T report, CancellationToken cancellationToken)
        where T : class
    {
        await EnsureAsync([queue], cancellationToken);
        var endpoint = await provider.GetSendEndpoint(address);
        await endpoint.Send(report, PlainJson.Use<T>, cancellationToken);
    }

    /// <summary>The labels, and for the answers to resyncs the bound that keeps that queue small.</summary>
    static Dictionary<string, object?> Arguments(string queue, IReadOnlyDictionary<string, object> labels)
    {
        var arguments = labels.ToDictionary(l => l.Key, l => (object?)l.Value);
        if (queue == Queues.ResyncResults)
            arguments["x-max-length"] = Queues.ResyncResultsKept;
        return arguments;
    }

    /// <summary>Labels a receive endpoint's queue; its error queue takes them from it and says what it holds instead.</summary>
    public static void Apply(IReceiveEndpointConfigurator endpoint, IReadOnlyDictionary<string, object> labels)
    {
        if (endpoint is not IRabbitMqReceiveEndpointConfigurator rabbit)
            return;
        foreach (var (key, value) in labels)
            rabbit.SetQueueArgument(key, value);
    }

    /// <summary>An error or skipped queue says what it holds, whatever the queue beside it carries.</summary>
    public static void LabelErrorQueues(IRabbitMqBusFactoryConfigurator rabbit)
    {
        rabbit.SendTopology.ConfigureErrorSettings = error => Describe(error, Queues.ErrorSuffix, Queues.ErrorDescription);
        rabbit.SendTopology.ConfigureDeadLetterSettings = skipped => Describe(skipped, Queues.SkippedSuffix, Queues.SkippedDescription);
    }

    static void Describe(IRabbitMqQueueBindingConfigurator queue, string suffix, Func<string, string> description)
    {
        // The queue's exchange has its name ("replicate-…_error").
        if (queue is MassTransit.RabbitMqTransport.EntitySettings { ExchangeName: { } name } && name.EndsWith(suffix, StringComparison.Ordinal))
            queue.SetQueueArgument(Queues.DescriptionArgument, description(name[..^suffix.Length]));
    }

    async Task CloseAsync()
    {
        if (connection is null)
            return;
        try
        {
            await connection.DisposeAsync();
        }
        catch (Exception e)
        {
            logger.LogDebug(e, "Closing the labels' connection failed");
        }
        connection = null;
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
        gate.Dispose();
    }
}
