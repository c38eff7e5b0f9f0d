using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Storage;

namespace Xtelemdb.Replicator.ReplicaSet;

/// <summary>
/// Once the bus runs, connects the queues of the TOML file's replicas, then of the replicas the
/// database knows; a database that is not up yet is asked again until it answers.
/// </summary>
sealed class ReplicaSetLoader(ReplicaDirectory directory, ReplicaEndpoints endpoints, InventoryStore store, ILogger<ReplicaSetLoader> logger)
    : IHostedLifecycleService
{
    readonly CancellationTokenSource stopping = new();
    Task loading = Task.CompletedTask;

    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        foreach (var replica in directory.All)
            await endpoints.ConnectAsync(replica, cancellationToken);
        loading = LoadAsync(stopping.Token);
    }

    async Task LoadAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                foreach (var replica in await store.ReplicasAsync(cancellationToken))
                {
                    if (replica.Enabled)
                        await endpoints.ConnectAsync(directory.Add(replica.Url), cancellationToken);
                }
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Cannot read the replica set from the database ({Error}); asking again in 10 s", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(10), cancellationToken);
            }
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
