using System.Collections.Concurrent;

namespace Xtelemdb.Hosting;

/// <summary>
/// Group commit: each caller hands in an item and waits; whoever holds the turn commits everything
/// handed in so far (up to a limit) in one go, and the next group gathers meanwhile. Under load the
/// groups grow by themselves; alone, an item is committed at once.
/// </summary>
/// <param name="commit">Completes each entry of a group; an entry it leaves open fails with what it threw.</param>
public sealed class GroupCommit<TItem, TResult>(int limit, Func<IReadOnlyList<GroupCommit<TItem, TResult>.Entry>, Task> commit)
{
    readonly ConcurrentQueue<Entry> handedIn = new();
    readonly SemaphoreSlim turn = new(1, 1);

    /// <param name="cancellationToken">Stops the wait for a turn; an item handed in may still be committed by another's turn.</param>
    public async Task<TResult> CommitAsync(TItem item, CancellationToken cancellationToken)
    {
        var entry = new Entry(item);
        handedIn.Enqueue(entry);
        await turn.WaitAsync(cancellationToken);
        try
        {
            // An earlier turn may have committed it along with its own group; a group takes the oldest
            // first, so behind a long queue this turn commits groups until it has committed its own.
            while (!entry.Done.Task.IsCompleted)
                await CommitGroupAsync();
        }
        finally
        {
            turn.Release();
        }
        return await entry.Done.Task;
    }

    async Task CommitGroupAsync()
    {
        var group = new List<Entry>(Math.Min(limit, handedIn.Count + 1));
        while (group.Count < limit && handedIn.TryDequeue(out var next))
            group.Add(next);
        Exception? failure = null;
        try
        {
            await commit(group);
        }
        catch (Exception e)
        {
            failure = e;
        }
        foreach (var entry in group)
            entry.Done.TrySetException(failure ?? new InvalidOperationException("the group commit left an item without an outcome"));
    }

    public sealed class Entry(TItem item)
    {
        public TItem Item => item;
        internal TaskCompletionSource<TResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public void Succeed(TResult result) => Done.TrySetResult(result);
        public void Fail(Exception error) => Done.TrySetException(error);
    }
}
