using System.Text;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The instrument network in a box: each instrument host (exao1..3) a process in its own network,
/// mount and UTS namespace: its own host name, its own data at the same path, its own private
/// backup folder at the same path, and its own link (<see cref="HostLink"/>) over which alone it
/// reaches the broker, the database and the SFTP backup host, by the names "broker", "database"
/// and "backup-host" of its own /etc/hosts. exao1 owns the backup disk, which it fills with the
/// other hosts' files through their data mounted on it (as MagAO-X's backup host reads them over
/// NFS; here a bind mount, which a cut link does not stop); every host writes its own files to
/// the SFTP replica.
/// </summary>
public sealed class InstrumentNetwork : IAsyncDisposable
{
    public static readonly string[] Hosts = ["exao1", "exao2", "exao3"];
    readonly TestPipeline pipeline;
    readonly Dictionary<string, HostLink> links = [];
    SshServer ssh = null!;

    InstrumentNetwork(TestPipeline pipeline) => this.pipeline = pipeline;

    /// <summary>The backup disk's path on every host (exao1's disk; the others' private folder).</summary>
    public string Backup => Path.Combine(pipeline.Root, "backup");
    /// <summary>The backup disk as replica_list and the queues name it.</summary>
    public string Disk => $"exao1:{Backup}";
    /// <summary>The SFTP replica, named alike on every host.</summary>
    public string Sftp => $"ssh://{ssh.User}@backup-host:{ssh.Port}/backup";
    /// <summary>Where the test reads the SFTP replica's copies.</summary>
    public string SftpFolder { get; private set; } = "";

    public string HostFolder(string host, string what) => Path.Combine(pipeline.Root, "hosts", host, what);
    string MountOf(string host) => Path.Combine(pipeline.Root, "mounts", host);
    public HostLink Link(string host) => links[host];

    /// <summary>Each host's data folder as the test reads it, and as the host's watcher sees it (the same path on every host).</summary>
    public IReadOnlyDictionary<string, string> Origins => Hosts.ToDictionary(h => h, h => HostFolder(h, "data"));
    public IReadOnlyDictionary<string, string> WatchedAs => Hosts.ToDictionary(h => h, _ => pipeline.Data);

    /// <summary>Both replicas, by name, and the folder the test reads each one's copies in.</summary>
    public IReadOnlyDictionary<string, string> Replicas => new Dictionary<string, string> { [Disk] = HostFolder("exao1", "backup"), [Sftp] = SftpFolder };

    public static async Task<InstrumentNetwork> StartAsync(TestPipeline pipeline)
    {
        var network = new InstrumentNetwork(pipeline);
        try
        {
            await network.BuildAsync();
        }
        catch
        {
            await network.DisposeAsync();
            throw;
        }
        return network;
    }

    async Task BuildAsync()
    {
        ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));
        SftpFolder = ssh.ReplicaFolder();
        Directory.CreateDirectory(Backup);
        var hostKey = File.ReadAllText(ssh.HostKey + ".pub").Split(' ');
        var knownHosts = Path.Combine(pipeline.Root, "known_hosts");
        await File.WriteAllTextAsync(knownHosts, $"[backup-host]:{ssh.Port} {hostKey[0]} {hostKey[1]}\n");
        for (var i = 0; i < Hosts.Length; i++)
        {
            var host = Hosts[i];
            Directory.CreateDirectory(HostFolder(host, "data"));
            Directory.CreateDirectory(HostFolder(host, "backup"));
            Directory.CreateDirectory(MountOf(host) + pipeline.Data);
            var link = HostLink.Up(i + 1);
            links[host] = link;
            foreach (var port in new[] { TestServices.Amqp.Port, new Npgsql.NpgsqlConnectionStringBuilder(TestServices.PostgresAdmin).Port, ssh.Port })
                link.Forward(port);
            await File.WriteAllTextAsync(HostFolder(host, "hosts"), $"127.0.0.1 localhost\n{link.HostSide} {host}\n{link.ServerSide} broker database backup-host\n");
            Configure(host, ssh.ReplicaTable(knownHosts: knownHosts));
        }
        TestPipeline.Mark(HostFolder("exao1", "backup"));
    }

    /// <summary>The host's TOML file, as its operator writes it: its host name, the servers by name, its replicas, and what it mounts.</summary>
    void Configure(string host, string sftpTable)
    {
        var ownsTheDisk = host == "exao1";
        var replicas = ownsTheDisk ? new[] { Backup, Sftp } : [Sftp];
        var database = new Npgsql.NpgsqlConnectionStringBuilder(pipeline.Connection) { Host = "database" }.ConnectionString;
        var broker = new UriBuilder("amqp", "broker", TestServices.Amqp.Port, pipeline.Name).Uri;
        pipeline.Configure(replicas, tables: new Dictionary<string, string> { [Backup] = "local = true", [Sftp] = sftpTable }, database: database, broker: broker);
        var toml = new StringBuilder(File.ReadAllText(pipeline.ConfigPath).Replace($"host = \"{TestPipeline.Host}\"", $"host = \"{host}\"", StringComparison.Ordinal));
        foreach (var other in ownsTheDisk ? Hosts.Where(h => h != host) : [])
            toml.Append($"[origins.\"{other}\"]\nmount = \"{MountOf(other)}\"\n\n");
        File.WriteAllText(ConfigOf(host), toml.ToString());
    }

    public string ConfigOf(string host) => HostFolder(host, "xtelemdb.toml");

    /// <summary>
    /// Runs xtelemdb on the host, on its TOML file: in its network namespace, with its host name,
    /// its /etc/hosts, its data at the watched path, its private backup folder, its NFS mounts.
    /// </summary>
    public XtelemdbProcess OnHost(string host, params string[] arguments)
    {
        var script = new StringBuilder("set -e\n");
        script.Append($"hostname {host}\n");
        script.Append($"mount --bind '{HostFolder(host, "hosts")}' /etc/hosts\n");
        script.Append($"mount --bind '{HostFolder(host, "data")}' '{pipeline.Data}'\n");
        script.Append($"mount --bind '{HostFolder(host, "backup")}' '{Backup}'\n");
        if (host == "exao1")
        {
            foreach (var other in Hosts.Where(h => h != host))
                script.Append($"mount --bind -o ro '{HostFolder(other, "data")}' '{MountOf(other)}{pipeline.Data}'\n");
        }
        script.Append($"exec '{TestPipeline.Executable}'");
        foreach (var argument in arguments.Append("--config").Append(ConfigOf(host)))
            script.Append($" '{argument}'");
        return pipeline.StartProgram("ip", null, ["netns", "exec", links[host].Name, "unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", script.ToString()]);
    }

    public async Task<(int ExitCode, string Output)> RunOnHostAsync(string host, params string[] arguments)
    {
        var run = OnHost(host, arguments);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await run.Process.WaitForExitAsync(timeout.Token);
        run.Process.WaitForExit();
        return (run.Process.ExitCode, run.Output);
    }

    public async ValueTask DisposeAsync()
    {
        // The hosts' processes are stopped with the pipeline, after this: a namespace removed under them keeps them cut off.
        if (ssh is not null)
            await ssh.DisposeAsync();
        foreach (var link in links.Values)
            await link.DisposeAsync();
    }
}
