namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// The SFTP sessions to one replica, shared: every copy in flight sends its requests on one of them,
/// so that a few connections carry many copies at once. All of them open together at the first
/// copy (a handshake is several round trips across a long link), and each copy takes the session
/// that carries the fewest copies: a session's server process handles its requests one at a time,
/// each fsync among them, so the copies are spread evenly from the first one on. Several sessions
/// also mean several channel windows for a large file. A session that failed is dropped, and the
/// next copy opens another in its place.
/// </summary>
public sealed class SftpSessions : IDisposable
{
    readonly SshEndpoint endpoint;
    readonly int connections;

    public SftpSessions(SshEndpoint endpoint, int connections)
    {
        (this.endpoint, this.connections) = (endpoint, connections);
        // SSH.NET's handshake waits on a thread, and so does a send while its session's window is
        // full: each connection gets two of the pool's, which otherwise adds threads only slowly
        // and leaves every copy waiting behind the handshakes.
        Copying.CopyThreads.Reserve(2 * connections);
    }

    readonly Lock gate = new();
    readonly List<Session> sessions = [];
    bool disposed;

    public SshEndpoint Endpoint => endpoint;

    /// <summary>The bound on connections to this replica.</summary>
    public int Connections => connections;

    /// <summary>The session carrying the fewest copies, for one copy (or one lane of one): dispose the lease when done.</summary>
    internal async Task<Lease> NextAsync(CancellationToken cancellationToken, IReadOnlyCollection<SftpWire>? exclude = null)
    {
        Session chosen;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            foreach (var dead in sessions.Where(s => s.Dead).ToArray())
            {
                sessions.Remove(dead);
                // Closed, so that a session out of step sends nothing more (its copies have failed or will).
                if (dead.Wire.IsCompletedSuccessfully)
                    _ = Task.Run(() => dead.Wire.Result.Client.Dispose());
            }
            while (sessions.Count < connections)
                sessions.Add(new Session(SftpConnector.ConnectAsync(endpoint, CancellationToken.None)));
            chosen = sessions.Where(s => exclude is null || !s.Wire.IsCompletedSuccessfully || !exclude.Contains(s.Wire.Result))
                .MinBy(s => s.Load) ?? sessions.MinBy(s => s.Load)!;
            chosen.Load++;
        }
        try
        {
            return new Lease(this, chosen, await chosen.Wire.WaitAsync(cancellationToken));
        }
        catch
        {
            Release(chosen);
            throw;
        }
    }

    void Release(Session session)
    {
        lock (gate)
            session.Load--;
    }

    public void Dispose()
    {
        Session[] closing;
        lock (gate)
        {
            disposed = true;
            closing = [.. sessions];
            sessions.Clear();
        }
        // Each disconnect waits for the server's word: all at once, not one round trip after another.
        Task.WaitAll(closing.Where(s => s.Wire.IsCompletedSuccessfully).Select(s => Task.Run(() => s.Wire.Result.Client.Dispose())));
    }

    /// <summary>One connection, from its handshake on (not bound to the token of the copy that asked: it outlives that copy).</summary>
    internal sealed class Session(Task<Renci.SshNet.SftpClient> connecting)
    {
        public Task<SftpWire> Wire { get; } = Open(connecting);
        public int Load { get; set; }

        public bool Dead => Wire.IsFaulted || Wire.IsCanceled || Wire.IsCompletedSuccessfully && !Wire.Result.Healthy;

        static async Task<SftpWire> Open(Task<Renci.SshNet.SftpClient> connecting)
        {
            var client = await connecting;
            try
            {
                return new SftpWire(client, client.OperationTimeout > TimeSpan.Zero ? client.OperationTimeout : TimeSpan.FromMinutes(2));
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }
    }

    /// <summary>A session lent to one copy.</summary>
    internal sealed class Lease(SftpSessions owner, Session session, SftpWire wire) : IDisposable
    {
        int released;

        public SftpWire Wire => wire;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
                owner.Release(session);
        }
    }
}
