using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// Migrates the database before anything consumes, registers the replicas of the TOML file, and
/// once the bus runs announces what the database holds pending (back-fills, a migration's resync),
/// again until the broker confirms it: a broker down at start delays the announcements, never
/// the start, and loses none of them.
/// </summary>
sealed class InventoryStartup(XtelemdbSettings settings, InventoryStore store, IBus bus, ILogger<InventoryStartup> logger)
    : IHostedLifecycleService
{
    static readonly TimeSpan Retry = TimeSpan.FromSeconds(10);
    readonly CancellationTokenSource stopping = new();
    Task announcing = Task.CompletedTask;

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var applied = InventoryDatabase.Migrate(settings.Database, settings.Host);
        if (applied.Count > 0)
            logger.LogInformation("Database migrated: {Scripts}", string.Join(", ", applied));
        return Task.CompletedTask;
    }

    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        await ConfiguredReplicas.RegisterAsync(settings, store, logger, cancellationToken);
        // An exchange of that name exists in every virtual host a stack ever ran in: say which one this is.
        logger.LogInformation("Resyncs: publish to exchange {Exchange} in virtual host \"{VirtualHost}\" of {Broker}; the answers are in queue {Results}",
            Queues.ResyncExchange, settings.Broker.VirtualHost, settings.Broker.Uri.Host, Queues.ResyncResults);
        announcing = AnnounceAsync(stopping.Token);
    }

    async Task AnnounceAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await ConfiguredReplicas.AnnounceAsync(store, bus, cancellationToken);
                // Published, then forgotten; a crash between the two only resyncs twice.
                foreach (var reason in await store.PendingResyncsAsync(cancellationToken))
                {
                    logger.LogInformation("Resyncing every replica: {Reason}", reason);
                    await ConfirmedSend.RunAsync(token => bus.Publish(new ResyncRequested(), token), "ResyncRequested", cancellationToken);
                    await store.ResyncDoneAsync(reason, cancellationToken);
                }
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Cannot announce the pending back-fills and resyncs ({Error}); trying again in {Retry}", e.Message, Retry);
                await Task.Delay(Retry, cancellationToken);
            }
        }
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await stopping.CancelAsync();
        try
        {
            await announcing;
        }
        catch (OperationCanceledException)
        {
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        stopping.Dispose();
        return Task.CompletedTask;
    }
}
