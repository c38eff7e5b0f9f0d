using System.Net;
using System.Net.Sockets;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// Forwards TCP connections from an address of a host's veth (on the root namespace's side) to a
/// server that listens on 127.0.0.1 only, such as the shared broker and database: the host reaches
/// the server through its veth and nothing else. It adds no delay and never cuts a connection of
/// its own; a link taken down stops the bytes on the veth, and the connections fare as they would
/// behind a router.
/// </summary>
public sealed class TcpForwarder : IAsyncDisposable
{
    readonly TcpListener listener;
    readonly int target;
    readonly CancellationTokenSource stopping = new();
    readonly List<Socket> open = [];
    readonly Task accepting;

    /// <param name="listen">The veth's root-side address.</param>
    /// <param name="port">The port listened on there, and the server's on 127.0.0.1.</param>
    public TcpForwarder(IPAddress listen, int port)
    {
        target = port;
        listener = new TcpListener(listen, port);
        listener.Start();
        accepting = AcceptAsync();
    }

    async Task AcceptAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = ForwardAsync(client);
        }
    }

    async Task ForwardAsync(Socket client)
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        lock (open)
        {
            open.Add(client);
            open.Add(server);
        }
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, target, stopping.Token);
            await Task.WhenAny(PipeAsync(client, server), PipeAsync(server, client));
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            lock (open)
            {
                open.Remove(client);
                open.Remove(server);
            }
            client.Dispose();
        }
    }

    /// <summary>One direction, until its end closes or fails; then both sockets are closed (the other direction ends too).</summary>
    async Task PipeAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, stopping.Token)) > 0)
                await to.SendAsync(buffer.AsMemory(0, read), stopping.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        from.Close();
        to.Close();
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        listener.Stop();
        lock (open)
        {
            foreach (var socket in open)
                socket.Close();
        }
        await accepting;
        stopping.Dispose();
    }
}
