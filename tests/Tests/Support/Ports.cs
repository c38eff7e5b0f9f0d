using System.Net;
using System.Net.Sockets;

namespace Xtelemdb.Tests.Support;

public static class Ports
{
    /// <summary>A TCP port nothing listens on at the moment, on 127.0.0.1.</summary>
    public static int FreeLoopback()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
