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
        var applied = InventoryDatabase.Migrate(settings.Database);
        if (applied.Count > 0)
            logger.LogInformation("Database migrated: {Scripts}", string.Join(", ", applied));
        return Task.CompletedTask;
    }

    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        foreach (var configured in settings.Replicas)
        {
            var replica = await store.RegisterReplicaAsync(configured.Url, configured.Kind, configured.Enabled, cancellationToken);
            if (!replica.IsNew)
                continue;
            logger.LogInformation("Replica {Url} registered from {Source}", replica.Url, settings.Source);
            await ConfirmedSend.RunAsync(token => bus.Publish(new ReplicaAdded { ReplicaId = replica.Id, ReplicaUrl = replica.Url }, token),
                $"ReplicaAdded {replica.Url}", cancellationToken);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
