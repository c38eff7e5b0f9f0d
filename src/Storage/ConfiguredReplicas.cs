using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Storage;

/// <summary>
/// The replicas a TOML file declares, registered as folders of the hosts they are on: a local one
/// is this host's. A new replica, one enabled again or one whose selection changed is announced,
/// so that the inventory back-fills it.
/// </summary>
public static class ConfiguredReplicas
{
    public static async Task RegisterAsync(XtelemdbSettings settings, InventoryStore store, IBus bus, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var configured in settings.Replicas)
        {
            var replica = await store.RegisterReplicaAsync(configured.Host, configured.Url, configured.Kind, configured.Enabled, configured.Selection, cancellationToken);
            if (!replica.IsNew && !replica.Changed)
                continue;
            logger.LogInformation("Replica {Replica} {Action} from {Source} ({Selection})", replica.Name,
                replica.IsNew ? "registered" : "updated", settings.Source, replica.Selection);
            if (!replica.Enabled)
                continue;
            await ConfirmedSend.RunAsync(token => bus.Publish(new ReplicaAdded { ReplicaId = replica.Id, ReplicaUrl = replica.Name }, token),
                $"ReplicaAdded {replica.Name}", cancellationToken);
        }
    }
}
