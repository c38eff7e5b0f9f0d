using Xtelemdb.Hosting;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// Records copies a group at a time (group commit): each ReplicaUpdated, alone or from a list, is
/// handed in, and whichever holds the turn records everything handed in so far in one transaction.
/// A small-file sync then costs one commit, and one WAL fsync, per group instead of per file. Each
/// copy still succeeds or fails alone: when a group names something unknown, its copies are
/// recorded one by one, so only the bad one goes to the error queue.
/// </summary>
public sealed class CopyRecorder
{
    public const int GroupLimit = 500;

    readonly InventoryStore store;
    readonly GroupCommit<ReplicaUpdated, IReadOnlyList<ReplicaNeeded>> groups;

    public CopyRecorder(InventoryStore store)
    {
        this.store = store;
        groups = new(GroupLimit, RecordGroupAsync);
    }

    /// <summary>Records the copy; returns the requests still needed for its file.</summary>
    public Task<IReadOnlyList<ReplicaNeeded>> RecordAsync(ReplicaUpdated copy, CancellationToken cancellationToken) =>
        groups.CommitAsync(copy, cancellationToken);

    async Task RecordGroupAsync(IReadOnlyList<GroupCommit<ReplicaUpdated, IReadOnlyList<ReplicaNeeded>>.Entry> group)
    {
        try
        {
            // Not the token of the message that holds the turn: the others' copies are in the same transaction.
            var needs = await store.RecordReplicasAsync(group.Select(e => e.Item).ToArray(), CancellationToken.None);
            for (var i = 0; i < group.Count; i++)
                group[i].Succeed(needs[i]);
        }
        catch (UnknownRecordException) when (group.Count > 1)
        {
            foreach (var entry in group)
            {
                try
                {
                    entry.Succeed((await store.RecordReplicasAsync([entry.Item], CancellationToken.None))[0]);
                }
                catch (Exception e)
                {
                    entry.Fail(e);
                }
            }
        }
        // Anything else (a database outage) fails the whole group; each message's own retry hands it in again.
    }
}
