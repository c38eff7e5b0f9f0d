using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>
/// Once the bus runs, registers the TOML file's replicas as this host's, then serves every pair of
/// the registered replica set that this replicator can; again whenever a replica is added, changed
/// or removed. A database that is not up yet is asked again until it answers.
/// </summary>
public sealed class ReplicaSetLoader(XtelemdbSettings settings, ReplicaDirectory directory, ReplicaEndpoints endpoints, InventoryStore store,
    IBus bus, ILogger<ReplicaSetLoader> logger) : IHostedLifecycleService
{
    readonly CancellationTokenSource stopping = new();
    readonly SemaphoreSlim oneAtATime = new(1, 1);
    Task loading = Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        loading = LoadAsync(stopping.Token);
        return Task.CompletedTask;
    }

    async Task LoadAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await ConfiguredReplicas.RegisterAsync(settings, store, logger, cancellationToken);
                await RefreshAsync(cancellationToken);
                // A replica registered here (its host's folder) is announced here too: the inventory may run on another host.
                await ConfiguredReplicas.AnnounceAsync(store, bus, cancellationToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Cannot read the replica set from the database ({Error}); asking again in 10 s", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(10), cancellationToken);
            }
        }
    }

    /// <summary>Reads the replica set and serves what this replicator can of it.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await oneAtATime.WaitAsync(cancellationToken);
        try
        {
            await directory.RefreshAsync(cancellationToken);
            await endpoints.ServeAsync(directory.All, cancellationToken);
        }
        finally
        {
            oneAtATime.Release();
        }
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await stopping.CancelAsync();
        try
        {
            await loading;
        }
        catch (OperationCanceledException)
        {
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        stopping.Dispose();
        return Task.CompletedTask;
    }
}
