using System.Diagnostics;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// An SSH server across a long link (scripts/wan-link): sshd in a network namespace of the test's
/// own behind a veth pair, its rate limited by tbf both ways where asked, and a proxy on 127.0.0.1
/// that holds every byte for half the round trip each way. Clients reach the server at
/// 127.0.0.1:<see cref="SshServer.PublicPort"/>; nothing leaves the machine.
/// </summary>
public sealed class WanLink : IAsyncDisposable
{
    static int made;
    readonly string name, subnet;
    Process? proxy;

    WanLink(string name, string subnet, SshServer server)
    {
        this.name = name;
        this.subnet = subnet;
        Server = server;
    }

    public SshServer Server { get; }

    static string Script => Path.Combine(Repository.Root(), "scripts", "wan-link");

    /// <param name="rate">tbf's rate each way, e.g. "100mbit"; null: only the delay.</param>
    public static async Task<WanLink> StartAsync(string folder, string roundTrip = "150ms", string? rate = null)
    {
        var n = Interlocked.Increment(ref made);
        var name = $"xw{Environment.ProcessId % 1000}n{n}";
        await RunAsync("down", name);
        var address = FreeSubnets.Claim("10.231");
        SshServer server;
        try
        {
            await RunAsync(rate is null ? ["up", name, address] : ["up", name, address, rate]);
            server = await SshServer.StartAsync(folder, (name, address + ".2"));
        }
        catch
        {
            await RunAsync("down", name);
            FreeSubnets.Release(address);
            throw;
        }
        var link = new WanLink(name, address, server);
        var port = Ports.FreeLoopback();
        link.proxy = Process.Start(new ProcessStartInfo(Script, ["proxy", $"127.0.0.1:{port}", $"{address}.2:{server.Port}", roundTrip])
        {
            RedirectStandardOutput = true,
        })!;
        var ready = await link.proxy.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.That(ready, Is.EqualTo("ready"), "the delaying proxy listens");
        server.PublicPort = port;
        await File.WriteAllTextAsync(server.KnownHosts, server.KnownHostsLine() + "\n");
        return link;
    }

    /// <summary>Bytes sent into the server's namespace so far, by the veth's own counter: what crossed the link.</summary>
    public long BytesSent() => long.Parse(File.ReadAllText($"/sys/class/net/{name[..Math.Min(10, name.Length)]}-h/statistics/tx_bytes"));

    /// <summary>Every connection through the link is cut at once, as when the link drops.</summary>
    public void Cut() => Process.Start("kill", ["-USR1", proxy!.Id.ToString()])!.WaitForExit();

    static async Task RunAsync(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(Script, arguments) { RedirectStandardError = true })!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (arguments[0] != "down")
            Assert.That(process.ExitCode, Is.Zero, $"wan-link {string.Join(' ', arguments)}: {error}");
    }

    public async ValueTask DisposeAsync()
    {
        if (proxy is { HasExited: false })
        {
            proxy.Kill();
            await proxy.WaitForExitAsync();
        }
        await Server.DisposeAsync();
        await RunAsync("down", name);
        FreeSubnets.Release(subnet);
    }
}
