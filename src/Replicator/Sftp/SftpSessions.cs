using Renci.SshNet;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// The SFTP sessions to one replica, shared: every copy in flight sends its requests on one of them
/// (the least busy), so that a few connections carry many copies at once. Another session opens,
/// up to the bound, while all that are open have requests in flight; a session that failed is
/// dropped, and the next copy opens another. Several sessions also mean several channel windows,
/// which a large file's transfer is spread over, and several server processes doing the fsyncs.
/// </summary>
public sealed class SftpSessions(SshEndpoint endpoint, int connections) : IDisposable
{
    readonly Lock gate = new();
    readonly List<Task<SftpWire>> sessions = [];
    bool disposed;

    public SshEndpoint Endpoint => endpoint;

    /// <summary>The bound on connections to this replica.</summary>
    public int Connections => connections;

    /// <summary>The least busy session, opening another while every open one is busy.</summary>
    internal Task<SftpWire> NextAsync(CancellationToken cancellationToken) => Pick(cancellationToken, exclude: []);

    /// <summary>Up to <paramref name="count"/> distinct sessions, the first being <paramref name="first"/>: the lanes of one large transfer.</summary>
    internal async Task<SftpWire[]> SeveralAsync(SftpWire first, int count, CancellationToken cancellationToken)
    {
        var lanes = new List<SftpWire> { first };
        while (lanes.Count < Math.Min(count, connections))
        {
            var next = await Pick(cancellationToken, exclude: lanes);
            if (lanes.Contains(next))
                break;
            lanes.Add(next);
        }
        return [.. lanes];
    }

    Task<SftpWire> Pick(CancellationToken cancellationToken, IReadOnlyCollection<SftpWire> exclude)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            foreach (var dead in sessions.Where(s => s.IsFaulted || s.IsCanceled || s.IsCompletedSuccessfully && !s.Result.Healthy).ToArray())
            {
                sessions.Remove(dead);
                if (dead.IsCompletedSuccessfully)
                    dead.Result.Client.Dispose();
            }
            var open = sessions.Where(s => s.IsCompletedSuccessfully && !exclude.Contains(s.Result)).OrderBy(s => s.Result.Pending).FirstOrDefault();
            if (open is { Result.Pending: 0 } || sessions.Count >= connections)
                return open ?? sessions.FirstOrDefault(s => !s.IsCompleted) ?? sessions[0];
            // A new session's handshake is a few round trips; copies meanwhile share those open.
            var opening = OpenAsync();
            sessions.Add(opening);
            return open is null ? opening : Task.FromResult(open.Result);
        }
    }

    /// <summary>Not bound to the token of the copy that asked: the session outlives it (the connect has its own timeout).</summary>
    async Task<SftpWire> OpenAsync()
    {
        var client = await SftpConnector.ConnectAsync(endpoint, CancellationToken.None);
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

    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            foreach (var session in sessions.Where(s => s.IsCompletedSuccessfully))
                session.Result.Client.Dispose();
            sessions.Clear();
        }
    }
}
