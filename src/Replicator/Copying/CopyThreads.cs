namespace Xtelemdb.Replicator.Copying;

/// <summary>
/// A copy holds its thread while it waits in fsync (and a small file is read and written without
/// awaiting), so every copy that may run at once gets a thread-pool thread of its own. Otherwise the
/// pool, which starts with one thread per core and adds more only slowly, leaves the bus and the
/// other consumers waiting behind blocked copies.
/// </summary>
public static class CopyThreads
{
    static readonly Lock gate = new();

    public static void Reserve(int copies)
    {
        lock (gate)
        {
            ThreadPool.GetMinThreads(out var workers, out var completionPorts);
            ThreadPool.SetMinThreads(workers + copies, completionPorts);
        }
    }
}
