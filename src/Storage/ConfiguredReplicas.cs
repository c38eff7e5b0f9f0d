using MassTransit;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Storage;

/// <summary>
/// The replicas a TOML file declares, registered as folders of the hosts they are on: a local one
/// is this host's. A new replica, one enabled again or one whose selection changed is marked in the
/// database for a back-fill, and announced until the broker confirms it.
/// </summary>
public static class ConfiguredReplicas
{
    public static async Task RegisterAsync(XtelemdbSettings settings, InventoryStore store, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var configured in settings.Replicas)
        {
            // A folder of this host is this file's to describe; an ssh:// folder of another host may be named by several hosts' files.
            var owned = configured.Host == settings.Host;
            var replica = await store.RegisterReplicaAsync(configured.Host, configured.Url, configured.Kind, configured.Enabled, configured.Selection,
                cancellationToken, fromConfiguration: true, keepSelection: !owned);
            if (configured.Enabled && !replica.Enabled)
                logger.LogWarning("Replica {Replica} of {Source} was removed by an operator and stays disabled; 'xtelemdb add_replica' enables it again",
                    replica.Name, settings.Source);
            if (!owned && replica.Enabled != configured.Enabled)
                logger.LogWarning("Replica {Replica} is {State} in the database, not as {Source} says: a folder of {Host} is enabled with 'xtelemdb add_replica' "
                    + "and disabled with 'xtelemdb remove_replica', not with another host's file", replica.Name, replica.Enabled ? "enabled" : "disabled", settings.Source, replica.Host);
            if (!owned && !replica.Selection.SameAs(configured.Selection))
                logger.LogWarning("Replica {Replica} selects {Selection} in the database, not {Configured} as {Source} says: a folder of {Host} "
                    + "changes its selection with 'xtelemdb add_replica', not with another host's file", replica.Name, replica.Selection, configured.Selection, settings.Source, replica.Host);
            if (replica.IsNew || replica.Changed)
                logger.LogInformation("Replica {Replica} {Action} from {Source} ({Selection})", replica.Name,
                    replica.IsNew ? "registered" : "updated", settings.Source, replica.Selection);
        }
    }

    /// <summary>
    /// Announces every back-fill the database holds pending (ReplicaAdded), and forgets each once the
    /// broker confirmed it: decided from the database, so a broker down at registration loses nothing.
    /// </summary>
    public static async Task AnnounceAsync(InventoryStore store, IBus bus, CancellationToken cancellationToken)
    {
        foreach (var replica in await store.PendingBackfillsAsync(cancellationToken))
        {
            await ConfirmedSend.RunAsync(token => bus.Publish(new ReplicaAdded { ReplicaId = replica.Id, ReplicaUrl = replica.Name }, token),
                $"ReplicaAdded {replica.Name}", cancellationToken);
            await store.BackfillAnnouncedAsync(replica.Id, cancellationToken);
        }
    }
}
