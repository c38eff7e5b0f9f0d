using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// Migrates the database before anything consumes, and once the bus runs registers the
/// replicas of the TOML file, announcing the new ones so they are back-filled.
/// </summary>
sealed class InventoryStartup(XtelemdbSettings settings, InventoryStore store, IBus bus, ILogger<InventoryStartup> logger)
    : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var applied = InventoryDatabase.Migrate(settings.Database, settings.Host);
        if (applied.Count > 0)
            logger.LogInformation("Database migrated: {Scripts}", string.Join(", ", applied));
        return Task.CompletedTask;
    }

    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        await ConfiguredReplicas.RegisterAsync(settings, store, bus, logger, cancellationToken);
        // A migration may ask for a resync (whoever ran it): published, then forgotten; a crash between the two only resyncs twice.
        foreach (var reason in await store.PendingResyncsAsync(cancellationToken))
        {
            logger.LogInformation("Resyncing every replica: {Reason}", reason);
            await ConfirmedSend.RunAsync(token => bus.Publish(new ResyncRequested(), token), "ResyncRequested", cancellationToken);
            await store.ResyncDoneAsync(reason, cancellationToken);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
