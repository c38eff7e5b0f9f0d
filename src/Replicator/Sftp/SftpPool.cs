using System.Collections.Concurrent;
using Renci.SshNet;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// SFTP sessions to one replica, opened on demand up to a bound and reused: one SSH handshake
/// per connection, not per file. A session that failed is dropped, and the next lease reconnects.
/// </summary>
public sealed class SftpPool(SshEndpoint endpoint, int size) : IDisposable
{
    readonly SemaphoreSlim slots = new(size, size);
    readonly ConcurrentBag<SftpClient> idle = [];

    public SshEndpoint Endpoint => endpoint;

    public async Task<Lease> RentAsync(CancellationToken cancellationToken)
    {
        await slots.WaitAsync(cancellationToken);
        try
        {
            while (idle.TryTake(out var client))
            {
                if (client.IsConnected)
                    return new Lease(this, client);
                client.Dispose();
            }
            return new Lease(this, await SftpConnector.ConnectAsync(endpoint, cancellationToken));
        }
        catch
        {
            slots.Release();
            throw;
        }
    }

    void Return(SftpClient client, bool healthy)
    {
        if (healthy && client.IsConnected)
            idle.Add(client);
        else
            client.Dispose();
        slots.Release();
    }

    public void Dispose()
    {
        while (idle.TryTake(out var client))
            client.Dispose();
    }

    /// <summary>One session, returned on Dispose; call Fail first when it may be broken.</summary>
    public sealed class Lease(SftpPool pool, SftpClient client) : IDisposable
    {
        bool healthy = true, returned;

        public SftpClient Client => client;

        public void Fail() => healthy = false;

        public void Dispose()
        {
            if (returned)
                return;
            returned = true;
            pool.Return(client, healthy);
        }
    }
}
