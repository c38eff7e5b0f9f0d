using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Hosting;

/// <summary>
/// Declares the pipeline's queues of [broker] queue_type, with arguments that say what each carries,
/// shown on its page in the management UI. RabbitMQ keeps the arguments of a queue's first
/// declaration and ignores keys it does not know on later ones, so a sender declares a queue with
/// its labels before its first send (a consumer's own declaration carries them too): whichever
/// comes first, the queue says what it is. A queue made by an older version keeps no labels until
/// it is deleted; 'replica_list --queues' names every queue either way. Classic queues: labels are
/// only words, and a failure to declare them never stops a send (the send declares the queue
/// itself). Quorum queues: RabbitMQ refuses a declaration without the type, which is what a send to
/// "queue:…" makes, so the declaration here must succeed and the send goes to the queue's exchange.
/// Either type, every send is mandatory: a queue deleted while the services run leaves its exchange
/// bound to nothing, and RabbitMQ returns what is sent there instead of dropping it; the queue is
/// declared again and the send goes again. A queue of the other type stops the service (<see cref="QueueTypeMismatchException"/>).
/// </summary>
public sealed class QueueLabels(BrokerSettings? broker, ILogger<QueueLabels> logger, IHostApplicationLifetime? lifetime = null) : IHostedService, IAsyncDisposable
{
    /// <summary>For the in-memory test harness: no broker, nothing declared.</summary>
    public static QueueLabels None(ILogger<QueueLabels> logger) => new(null, logger);

    /// <summary>The argument that makes a queue classic or quorum.</summary>
    public const string TypeArgument = "x-queue-type";

    /// <summary>How long a quorum queue of one process outlives it (a quorum queue cannot be auto-deleted).</summary>
    public static readonly TimeSpan ProcessQueueExpiry = TimeSpan.FromMinutes(1);

    /// <summary>How long the error queue of such a queue keeps its failures after its last use.</summary>
    public static readonly TimeSpan FailuresKept = TimeSpan.FromDays(7);

    bool Quorum => broker?.QueueType == QueueType.Quorum;

    /// <summary>How many times a send goes to a queue's exchange that RabbitMQ returns it from, the queue declared again before each.</summary>
    public const int ReturnedAttempts = 3;

    /// <summary>The queues this process declared on its connection, with their labels: a queue deleted since is declared with them again.</summary>
    readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, object>> declared = new(StringComparer.Ordinal);
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
        catch (Exception e) when (e is not QueueTypeMismatchException && !cancellationToken.IsCancellationRequested)
        {
            // Quorum queues: each send declares its queue first, and fails (and is retried) until it can.
            logger.LogWarning("The broker did not declare the queues ({Error}); each is declared before its first send", e.Message);
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
            connection ??= await OpenAsync(cancellationToken);
            foreach (var (queue, labels) in missing.Where(q => !declared.ContainsKey(q.Queue)))
            {
                // A refused declaration closes its channel: one channel per queue.
                await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                try
                {
                    await DeclareAsync(channel, queue, labels, cancellationToken);
                }
                catch (Exception e) when (QueueTypeMismatchException.From(e, queue, broker) is { } mismatch)
                {
                    throw Stop(mismatch);
                }
                declared[queue] = labels;
            }
        }
        catch (Exception e) when (e is not QueueTypeMismatchException && !cancellationToken.IsCancellationRequested)
        {
            await CloseAsync();
            if (Quorum)
                throw;
            logger.LogDebug(e, "Could not declare the labels of queues {Queues}; they are declared without them", string.Join(", ", missing.Select(q => q.Queue)));
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// The queue, its exchange (as MassTransit names it) and their binding; and, for a queue an
    /// operator reads, its error queue, so that a type that differs there is found at start too.
    /// </summary>
    async Task DeclareAsync(IChannel channel, string queue, IReadOnlyDictionary<string, object> labels, CancellationToken cancellationToken)
    {
        // The same durable, non-exclusive, lasting queue MassTransit declares, so either declaration may come first.
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, Arguments(queue, labels), cancellationToken: cancellationToken);
        // Sends go to the exchange (quorum), and the answers to resyncs always: a send to the queue itself
        // would declare it without its type or length limit, which RabbitMQ refuses as a different queue.
        await channel.ExchangeDeclareAsync(queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(queue, queue, "", cancellationToken: cancellationToken);
        if (Queues.HasErrorQueue(queue))
        {
            var error = queue + Queues.ErrorSuffix;
            try
            {
                await channel.QueueDeclareAsync(error, durable: true, exclusive: false, autoDelete: false, Arguments(error, Queues.Labels(error)), cancellationToken: cancellationToken);
            }
            catch (Exception e) when (QueueTypeMismatchException.From(e, error, broker!) is { } mismatch)
            {
                throw Stop(mismatch);
            }
        }
    }

    /// <summary>Ends the service: it cannot run on a queue of the other type, and a restart would only find it again.</summary>
    QueueTypeMismatchException Stop(QueueTypeMismatchException mismatch)
    {
        logger.LogCritical("{Error}; exiting with code {Code}", mismatch.Message, QueueTypeMismatchException.ExitCode);
        Environment.ExitCode = QueueTypeMismatchException.ExitCode;
        lifetime?.StopApplication();
        return mismatch;
    }

    /// <summary>
    /// Sends messages to one of the pipeline's queues, declared first: to the queue itself for classic
    /// queues (a send declares it if missing), to its exchange for quorum queues (declared and bound
    /// here); mandatory either way, so that RabbitMQ returns what no queue is bound to take.
    /// </summary>
    public async Task SendAsync<T>(ISendEndpointProvider provider, string queue, IReadOnlyCollection<T> messages, string what,
        CancellationToken cancellationToken, Action<SendContext<T>>? configure = null) where T : class
    {
        if (messages.Count == 0)
            return;
        await EnsureAsync([queue], cancellationToken);
        // Always to the exchange for the answers to resyncs: a send to their queue would declare it without its length limit.
        var endpoint = await provider.GetSendEndpoint(new Uri(Quorum || queue == Queues.ResyncResults ? $"exchange:{queue}" : $"queue:{queue}"));
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ConfirmedSend.RunAsync(token => endpoint.SendBatch(messages, context => Configure(context, configure), token), what, cancellationToken);
                return;
            }
            catch (MessageReturnedException e)
            {
                // A batch may have gone in part: the rest goes again with it, and a duplicate costs nothing.
                if (attempt == ReturnedAttempts)
                    throw new InvalidOperationException($"RabbitMQ returned {what} sent to exchange '{queue}' {attempt} times: no queue '{queue}' is bound to it, although it was declared again before each send (unless a warning before says otherwise)", e);
                logger.LogWarning("RabbitMQ returned {What}: queue {Queue} was deleted while the services run; declaring it again and sending again", what, queue);
                declared.TryRemove(queue, out var labels);
                await EnsureAsync([(queue, labels ?? Queues.Labels(queue))], cancellationToken);
                if (!declared.ContainsKey(queue))
                    logger.LogWarning("Could not declare queue {Queue} again (the error is logged at Debug level); sending again all the same", queue);
            }
        }
    }

    void Configure<T>(SendContext<T> context, Action<SendContext<T>>? configure) where T : class
    {
        if (context.TryGetPayload(out RabbitMqSendContext? rabbit))
            rabbit.Mandatory = true;
        configure?.Invoke(context);
    }

    /// <summary>Sends a report written for people (plain JSON) to one of the pipeline's queues, its labels declared first.</summary>
    public Task SendReportAsync<T>(ISendEndpointProvider provider, string queue, T report, CancellationToken cancellationToken)
        where T : class =>
        SendAsync(provider, queue, [report], typeof(T).Name, cancellationToken, PlainJson.Use);

    /// <summary>The queue's type, its labels, and for the answers to resyncs the bound that keeps that queue small.</summary>
    Dictionary<string, object?> Arguments(string queue, IReadOnlyDictionary<string, object> labels)
    {
        var arguments = labels.ToDictionary(l => l.Key, l => (object?)l.Value);
        arguments[TypeArgument] = TypeName(broker!.QueueType);
        if (queue == Queues.ResyncResults)
            arguments["x-max-length"] = Queues.ResyncResultsKept;
        return arguments;
    }

    public static string TypeName(QueueType type) => type == QueueType.Quorum ? "quorum" : "classic";

    /// <summary>
    /// Gives every receive endpoint's queue the type, before the bus declares it; its error and skipped
    /// queues copy the type from it (MassTransit copies a queue's arguments to them). A queue of one
    /// process is auto-deleted when classic; a quorum queue cannot be, so it expires unused instead.
    /// </summary>
    public static void SetQueueType(IRabbitMqBusFactoryConfigurator rabbit, QueueType type) =>
        rabbit.ConnectEndpointConfigurationObserver(new QueueTypeObserver(type));

    sealed class QueueTypeObserver(QueueType type) : IEndpointConfigurationObserver
    {
        public void EndpointConfigured<T>(T configurator) where T : IReceiveEndpointConfigurator
        {
            if (configurator is not IRabbitMqReceiveEndpointConfigurator rabbit)
                return;
            if (type == QueueType.Classic)
            {
                rabbit.SetQueueArgument(TypeArgument, TypeName(type));
                return;
            }
            if (configurator is MassTransit.RabbitMqTransport.Configuration.IRabbitMqReceiveEndpointConfiguration { Settings.AutoDelete: true })
                rabbit.QueueExpiration = ProcessQueueExpiry;
            rabbit.SetQuorumQueue();
        }
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
        // The error queue of a process's quorum queue copies its expiry, which would drop the failures a minute after they came.
        if (queue is MassTransit.RabbitMqTransport.Configuration.RabbitMqQueueConfigurator { QueueExpiration: not null })
            queue.QueueExpiration = FailuresKept;
        // The queue's exchange has its name ("replicate-…_error").
        if (queue is MassTransit.RabbitMqTransport.EntitySettings { ExchangeName: { } name } && name.EndsWith(suffix, StringComparison.Ordinal))
            queue.SetQueueArgument(Queues.DescriptionArgument, description(name[..^suffix.Length]));
    }

    /// <summary>A new connection (the broker or the virtual host came back) declares every queue again before its next send.</summary>
    async Task<IConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var opened = await BrokerConnection.OpenAsync(broker!, "xtelemdb queue labels", cancellationToken);
        declared.Clear();
        opened.RecoverySucceededAsync += (_, _) =>
        {
            declared.Clear();
            return Task.CompletedTask;
        };
        return opened;
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
