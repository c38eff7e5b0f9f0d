using System.Diagnostics;
using System.Net;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// One instrument host's network: a network namespace of the test's own joined to this one by a
/// veth pair (scripts/wan-link up, without delay or rate), this side 10.232.N.1/30, the host's
/// side 10.232.N.2/30. The host reaches the servers the test shares on 127.0.0.1 through
/// forwarders on 10.232.N.1 (<see cref="TcpForwarder"/>), and nothing else: its namespace has no
/// other route. <see cref="Cut"/> takes the veth down, as a pulled cable.
/// </summary>
public sealed class HostLink : IAsyncDisposable
{
    const string NamePrefix = "xi";
    readonly List<TcpForwarder> forwarders = [];

    readonly string subnet;

    HostLink(string name, string subnet)
    {
        Name = name;
        this.subnet = subnet;
        ServerSide = IPAddress.Parse(subnet + ".1");
        HostSide = IPAddress.Parse(subnet + ".2");
    }

    /// <summary>The network namespace, e.g. xi3f2ah2 (this process's id in hex, and the host's number).</summary>
    public string Name { get; }
    /// <summary>The veth's end in this (the root) namespace: the one <see cref="Cut"/> takes down.</summary>
    public string Veth => $"{Name[..Math.Min(10, Name.Length)]}-h";
    public IPAddress ServerSide { get; }
    public IPAddress HostSide { get; }

    static string Script => Path.Combine(Repository.Root(), "scripts", "wan-link");

    /// <param name="number">The host's number within this test process (1, 2, 3…).</param>
    public static HostLink Up(int number)
    {
        RemoveLeftovers();
        var name = $"{NamePrefix}{Environment.ProcessId:x}h{number}";
        Run("down", name);
        var subnet = FreeSubnets.Claim("10.232");
        try
        {
            Run("up", name, subnet);
        }
        catch
        {
            Run("down", name);
            FreeSubnets.Release(subnet);
            throw;
        }
        return new HostLink(name, subnet);
    }

    /// <summary>Serves a server of 127.0.0.1 (the shared broker, database, sshd) on the same port of this link's server-side address.</summary>
    public void Forward(int port) => forwarders.Add(new TcpForwarder(ServerSide, port));

    /// <summary>The link goes down: nothing crosses it either way until <see cref="Restore"/>.</summary>
    public void Cut() => Shell.Run("ip", "link", "set", Veth, "down");

    public void Restore() => Shell.Run("ip", "link", "set", Veth, "up");

    /// <summary>Packets that crossed into the host's namespace so far (the veth's own counter).</summary>
    public long PacketsSent() => long.Parse(File.ReadAllText($"/sys/class/net/{Veth}/statistics/tx_packets"));

    /// <summary>Namespaces of a test process that no longer runs (a run killed before its clean-up).</summary>
    static void RemoveLeftovers()
    {
        foreach (var line in Shell.Output("ip", "netns", "list").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = line.Split(' ')[0];
            var owner = name.StartsWith(NamePrefix, StringComparison.Ordinal) && name.IndexOf('h', NamePrefix.Length) is var h and > 0
                && int.TryParse(name.AsSpan(NamePrefix.Length, h - NamePrefix.Length), System.Globalization.NumberStyles.HexNumber, null, out var pid) ? pid : (int?)null;
            if (owner is { } id && !Directory.Exists($"/proc/{id}"))
            {
                TestContext.Progress.WriteLine($"removing network namespace {name}, left by process {id}");
                Run("down", name);
            }
        }
    }

    static void Run(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(Script, arguments) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (arguments[0] != "down")
            Assert.That(process.ExitCode, Is.Zero, $"wan-link {string.Join(' ', arguments)}: {error}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var forwarder in forwarders)
            await forwarder.DisposeAsync();
        Run("down", Name);
        FreeSubnets.Release(subnet);
    }
}
