using System.Collections.Concurrent;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// Records copies a group at a time (group commit): each ReplicaUpdated consumer hands in its copy,
/// and whichever holds the turn records everything handed in so far in one transaction. A small-file
/// sync then costs one commit, and one WAL fsync, per group instead of per file. Each message still
/// succeeds or fails alone: when a group names something unknown, its copies are recorded one by one,
/// so only the bad message goes to the error queue.
/// </summary>
public sealed class CopyRecorder(InventoryStore store)
{
    public const int GroupLimit = 200;

    readonly ConcurrentQueue<Handed> handedIn = new();
    readonly SemaphoreSlim turn = new(1, 1);

    /// <summary>Records the copy; returns the requests still needed for its file.</summary>
    public async Task<IReadOnlyList<ReplicaNeeded>> RecordAsync(ReplicaUpdated copy, CancellationToken cancellationToken)
    {
        var handed = new Handed(copy);
        handedIn.Enqueue(handed);
        await turn.WaitAsync(cancellationToken);
        try
        {
            // An earlier turn may have recorded it along with its own group.
            if (!handed.Needs.Task.IsCompleted)
                await RecordGroupAsync(cancellationToken);
        }
        finally
        {
            turn.Release();
        }
        return await handed.Needs.Task;
    }

    async Task RecordGroupAsync(CancellationToken cancellationToken)
    {
        var group = new List<Handed>(GroupLimit);
        while (group.Count < GroupLimit && handedIn.TryDequeue(out var next))
            group.Add(next);
        try
        {
            var needs = await store.RecordReplicasAsync(group.Select(h => h.Copy).ToArray(), cancellationToken);
            for (var i = 0; i < group.Count; i++)
                group[i].Needs.TrySetResult(needs[i]);
        }
        catch (UnknownRecordException) when (group.Count > 1)
        {
            foreach (var handed in group)
                await RecordAloneAsync(handed, cancellationToken);
        }
        catch (Exception e)
        {
            // A database outage fails the whole group; each message's own retry hands it in again.
            foreach (var handed in group)
                handed.Needs.TrySetException(e);
        }
    }

    async Task RecordAloneAsync(Handed handed, CancellationToken cancellationToken)
    {
        try
        {
            handed.Needs.TrySetResult((await store.RecordReplicasAsync([handed.Copy], cancellationToken))[0]);
        }
        catch (Exception e)
        {
            handed.Needs.TrySetException(e);
        }
    }

    sealed record Handed(ReplicaUpdated Copy)
    {
        public TaskCompletionSource<IReadOnlyList<ReplicaNeeded>> Needs { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
