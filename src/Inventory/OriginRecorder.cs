using MassTransit;
using Npgsql;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// Records a list of observations in one statement, then asks for every copy the replicas lack.
/// One row the database refuses for good (a path too long for its index) fails the whole
/// statement, so a list it refuses is recorded by halves, down to single rows: every file the
/// database takes is recorded and asked for, and only the refused ones fail.
/// </summary>
public sealed class OriginRecorder(InventoryStore store, ReplicaNeeds replicaNeeds, RefusedObservations refusals, IBus bus)
{
    /// <remarks>
    /// Sends through the bus, not the delivery: MassTransit also awaits a ConsumeContext's sends when
    /// the delivery completes, and one that ConfirmedSend gave up on after a lost connection fails
    /// the delivery long after, moving a list that was recorded and sent on to the error queue.
    /// </remarks>
    public async Task RecordAsync(IEnumerable<FileChanged> changes, CancellationToken cancellationToken)
    {
        // One row per file: the latest observation wins. In one order everywhere: two lists naming the
        // same new files (a day folder's scan, and the renames into it) then never deadlock on their rows.
        var latest = changes
            .GroupBy(m => (m.Host, m.Path))
            .Select(g => g.MaxBy(m => m.ObservedAt)!)
            .OrderBy(m => m.Host, StringComparer.Ordinal).ThenBy(m => m.Path, StringComparer.Ordinal)
            .ToArray();
        var refused = new List<(FileChanged Change, PostgresException Error)>();
        await UpsertAsync(latest, refused, cancellationToken);
        var recorded = refused.Count == 0 ? latest : latest.Except(refused.Select(r => r.Change)).ToArray();
        PipelineMetrics.OriginUpserts.Add(recorded.Length);

        // Decided from the database, not from what this batch changed: a redelivered batch sends again.
        // A file that appeared as another of its name and version vanished is a move: renamed on the replicas that hold it.
        var needs = await store.NeedsOrMovesOfAsync(recorded.Where(m => !m.Deleted).Select(m => (m.Host, m.Path)), cancellationToken);
        await replicaNeeds.SendAsync(bus, needs, cancellationToken);
        if (refused.Count > 0)
            await refusals.ReportAsync(bus, latest.Length, refused, cancellationToken);
    }

    /// <summary>
    /// By halves, in order (rows are still locked in one order): a refusal costs at most two
    /// statements per row, and a time-bound error (an outage, a deadlock) still fails the whole list, to be retried.
    /// </summary>
    async Task UpsertAsync(ArraySegment<FileChanged> changes, List<(FileChanged, PostgresException)> refused, CancellationToken cancellationToken)
    {
        try
        {
            await store.UpsertOriginsAsync(changes, cancellationToken);
        }
        catch (PostgresException error) when (!DatabaseErrors.IsTransient(error))
        {
            if (changes.Count == 1)
            {
                refused.Add((changes[0], error));
                return;
            }
            var half = changes.Count / 2;
            await UpsertAsync(changes[..half], refused, cancellationToken);
            await UpsertAsync(changes[half..], refused, cancellationToken);
        }
    }
}
