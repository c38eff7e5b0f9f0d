using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// A real OpenSSH server (Debian's sshd) on 127.0.0.1 and a free port, with a host key and a
/// user key generated for the run; SFTP sessions start in <see cref="Home"/>.
/// </summary>
public sealed class SshServer : IAsyncDisposable
{
    Process? sshd;

    SshServer(string folder)
    {
        Folder = folder;
        Home = Path.Combine(folder, "home");
        Directory.CreateDirectory(Home);
    }

    public string Folder { get; }
    /// <summary>The network namespace sshd runs in (behind a <see cref="WanLink"/>); null: this one.</summary>
    public string? Namespace { get; private init; }
    public string ListenAddress { get; private init; } = "127.0.0.1";
    /// <summary>Where clients reach the server: <see cref="Port"/>, or a proxy's port in front of it.</summary>
    public int PublicPort { get => publicPort ?? Port; set => publicPort = value; }
    int? publicPort;
    /// <summary>Where SFTP sessions start: relative replica paths land here.</summary>
    public string Home { get; }
    public int Port { get; private set; }
    public string HostKey => Path.Combine(Folder, "host_key");
    public string UserKey => Path.Combine(Folder, "user_key");
    public string User => Environment.UserName;
    /// <summary>A known_hosts file that trusts this server.</summary>
    public string KnownHosts => Path.Combine(Folder, "known_hosts");

    /// <summary>A folder in the login's home with the marker add_replica writes: the root of an SSH replica.</summary>
    public string ReplicaFolder(string name = "backup")
    {
        var folder = Path.Combine(Home, name);
        Directory.CreateDirectory(folder);
        TestPipeline.Mark(folder);
        return folder;
    }

    /// <summary>The body of a [replicas."ssh://…"] table that reaches this server with the test's key.</summary>
    public string ReplicaTable(string? identity = null, string? knownHosts = null, string extra = "") =>
        $"identity_file = \"{identity ?? UserKey}\"\nknown_hosts = \"{knownHosts ?? KnownHosts}\"\nconcurrency = 2\n{extra}";
    public string HostKeyFingerprint { get; private set; } = "";

    /// <summary>Options of the SFTP server from the next start on, e.g. "-P posix-rename" to refuse that extension.</summary>
    public string SftpOptions { get; set; } = "";

    /// <summary>
    /// From the next start on, OpenSSH's sftp-server program instead of sshd's built-in one, logging
    /// every request it serves to <see cref="SftpLog"/> ("request 12: fsync").
    /// </summary>
    public bool LogSftpRequests { get; set; }

    public string SftpLog => Path.Combine(Folder, "sftp-server.log");

    string Subsystem()
    {
        if (!LogSftpRequests)
            return $"internal-sftp -d {Home} {SftpOptions}";
        var script = Path.Combine(Folder, "sftp-server.sh");
        File.WriteAllText(script, $"#!/bin/sh\nexec /usr/lib/openssh/sftp-server -e -l DEBUG3 -d '{Home}' {SftpOptions} 2>>'{SftpLog}'\n");
        Run("chmod", "700", script);
        return script;
    }

    /// <param name="inNamespace">A network namespace of the test's own (and the address sshd listens on there), or null for 127.0.0.1.</param>
    public static async Task<SshServer> StartAsync(string folder, (string Name, string Address)? inNamespace = null)
    {
        var server = new SshServer(folder) { Namespace = inNamespace?.Name, ListenAddress = inNamespace?.Address ?? "127.0.0.1" };
        Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "xtelemdb-test-host", "-f", server.HostKey);
        Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "xtelemdb-test-user", "-f", server.UserKey);
        File.Copy(server.UserKey + ".pub", Path.Combine(folder, "authorized_keys"));
        server.Port = inNamespace is null ? Ports.FreeLoopback() : 22;
        await server.StartSshdAsync();
        return server;
    }

    /// <summary>The known_hosts line for this server's current host key.</summary>
    public string KnownHostsLine()
    {
        var fields = File.ReadAllText(HostKey + ".pub").Split(' ');
        return $"[127.0.0.1]:{PublicPort} {fields[0]} {fields[1]}";
    }

    /// <summary>Starts sshd again on the same port and keys, after <see cref="StopAsync"/>.</summary>
    public async Task StartSshdAsync()
    {
        Directory.CreateDirectory("/run/sshd");
        var config = Path.Combine(Folder, "sshd_config");
        File.WriteAllText(config, $"""
            Port {Port}
            ListenAddress {ListenAddress}
            HostKey {HostKey}
            AuthorizedKeysFile {Path.Combine(Folder, "authorized_keys")}
            PidFile {Path.Combine(Folder, "sshd.pid")}
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PermitRootLogin prohibit-password
            MaxStartups 100
            MaxSessions 100
            LogLevel ERROR
            Subsystem sftp {Subsystem()}

            """);
        // ip netns exec execs sshd itself: the process is sshd, whose children are the connections.
        sshd = Process.Start(Namespace is null
            ? new ProcessStartInfo("/usr/sbin/sshd", ["-D", "-e", "-f", config]) { RedirectStandardError = true }
            : new ProcessStartInfo("ip", ["netns", "exec", Namespace, "/usr/sbin/sshd", "-D", "-e", "-f", config]) { RedirectStandardError = true })!;
        sshd.ErrorDataReceived += (_, e) => { if (e.Data is not null) TestContext.Progress.WriteLine("[sshd] " + e.Data); };
        sshd.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Parse(ListenAddress), Port);
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !sshd.HasExited)
            {
                await Task.Delay(50);
            }
        }
        Assert.That(sshd.HasExited, Is.False, "sshd started");
        File.WriteAllText(KnownHosts, KnownHostsLine() + "\n");
        HostKeyFingerprint = Run("ssh-keygen", "-l", "-f", HostKey + ".pub").Split(' ')[1];
    }

    /// <summary>Ends every open SSH connection (the per-connection sshd processes); the listener stays.</summary>
    public void DropConnections()
    {
        foreach (var child in Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)))
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{child}/stat");
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                if (parent == sshd!.Id)
                    Process.GetProcessById(int.Parse(child!)).Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
            {
                // gone meanwhile
            }
        }
    }

    /// <summary>The server gets a new host key, as after a reinstall (or an impostor).</summary>
    public async Task ChangeHostKeyAsync()
    {
        await StopAsync();
        File.Delete(HostKey);
        File.Delete(HostKey + ".pub");
        Run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "xtelemdb-test-host-2", "-f", HostKey);
        var trusted = File.ReadAllText(KnownHosts);
        await StartSshdAsync();
        File.WriteAllText(KnownHosts, trusted); // still the old key
    }

    /// <summary>The SSH host goes down: sshd and every connection it serves, killed.</summary>
    public async Task StopAsync()
    {
        if (sshd is { HasExited: false })
        {
            sshd.Kill(entireProcessTree: true);
            await sshd.WaitForExitAsync();
        }
    }

    static string Run(string program, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, $"{program} {string.Join(' ', arguments)}");
        return output;
    }

    public async ValueTask DisposeAsync()
    {
        DropConnections();
        await StopAsync();
    }
}
