using Xtelemdb.Hosting.Selection;

namespace Xtelemdb.Hosting.Settings;

/// <summary>The whole TOML file, validated. Built by <see cref="SettingsLoader"/>.</summary>
public sealed record XtelemdbSettings
{
    /// <summary>The file these settings came from, or "built-in defaults".</summary>
    public required string Source { get; init; }
    /// <summary>This machine's origin host name.</summary>
    public required string Host { get; init; }
    public required DatabaseSettings Database { get; init; }
    public required BrokerSettings Broker { get; init; }
    public required WatchSettings Watch { get; init; }
    public required ReplicatorSettings Replicator { get; init; }
    public MonitoringSettings Monitoring { get; init; } = new(null, LogFormat.Text);
    public required IReadOnlyList<ReplicaSettings> Replicas { get; init; }
    /// <summary>
    /// Other hosts' files this machine reads through a mount ([origins."rtc"] mount = "/srv/rtc"):
    /// rtc's /opt/MagAOX/telem/x is read here as /srv/rtc/opt/MagAOX/telem/x. Host to mount.
    /// </summary>
    public IReadOnlyDictionary<string, string> Origins { get; init; } = new Dictionary<string, string>();

    /// <summary>The table this file gives the replica (host, url), if any.</summary>
    public ReplicaSettings? Replica(string host, string url) => Replicas.FirstOrDefault(r => r.Host == host && r.Url == url);

    /// <summary>Where this machine reads a file of <paramref name="originHost"/>; null when it cannot.</summary>
    public string? SourcePath(string originHost, string originPath) =>
        originHost == Host ? originPath
        : Origins.TryGetValue(originHost, out var mount) ? Path.TrimEndingDirectorySeparator(mount) + originPath
        : null;

    /// <summary>The origin hosts whose files this machine reads: its own, and those mounted.</summary>
    public IEnumerable<string> ReadableHosts => Origins.Keys.Prepend(Host).Distinct(StringComparer.Ordinal);
}

public sealed record DatabaseSettings(string Connection)
{
    public const string DefaultConnection = "Host=127.0.0.1;Port=5432;Database=xtelem;Username=xtelem";
}

/// <summary>The user and password come from XTELEMDB_BROKER_USER and XTELEMDB_BROKER_PASSWORD.</summary>
/// <param name="Uri">The first node to connect to, and the virtual host (its path).</param>
public sealed record BrokerSettings(Uri Uri)
{
    public static readonly Uri DefaultUri = new("amqp://127.0.0.1:5672/");

    /// <summary>The other nodes of a cluster ([broker] nodes), as host:port; empty for one node.</summary>
    public IReadOnlyList<BrokerNode> ClusterNodes { get; init; } = [];

    /// <summary>The type of every queue the pipeline declares.</summary>
    public QueueType QueueType { get; init; } = QueueType.Classic;

    /// <summary>Every node a service may connect to, the URI's first: on losing one, a connection goes to the next.</summary>
    public IReadOnlyList<BrokerNode> Nodes => ClusterNodes.Prepend(new BrokerNode(Uri.Host, Uri.IsDefaultPort ? DefaultPort : Uri.Port)).Distinct().ToArray();

    int DefaultPort => Uri.Scheme == "amqps" ? 5671 : 5672;

    public string User => Environment.GetEnvironmentVariable("XTELEMDB_BROKER_USER") is { Length: > 0 } user ? user : "guest";
    public string Password => Environment.GetEnvironmentVariable("XTELEMDB_BROKER_PASSWORD") is { Length: > 0 } password ? password : "guest";

    /// <summary>The virtual host the stack's queues and exchanges live in: the URI's path, "/" when it has none.</summary>
    public string VirtualHost => Uri.UnescapeDataString(Uri.AbsolutePath.TrimStart('/')) is { Length: > 0 } path ? path : "/";
}

/// <summary>A RabbitMQ node: "rmq1:5672".</summary>
public sealed record BrokerNode(string Host, int Port)
{
    /// <summary>"rmq1:5672", "10.0.0.5:5672": a host name or IPv4 address and a port (MassTransit's cluster nodes take no IPv6 address).</summary>
    public static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out BrokerNode? node)
    {
        node = null;
        var parts = text.Split(':');
        if (parts is not [var host, var port] || !int.TryParse(port, System.Globalization.NumberStyles.None, null, out var number) || number is < 1 or > 65535
            || Uri.CheckHostName(host) is not (UriHostNameType.Dns or UriHostNameType.IPv4))
            return false;
        node = new BrokerNode(host, number);
        return true;
    }

    public override string ToString() => $"{Host}:{Port}";
}

/// <summary>
/// Classic on one node; quorum on a cluster, where each queue is replicated on a majority of the
/// nodes and survives the loss of a minority. RabbitMQ cannot change the type of an existing queue.
/// </summary>
public enum QueueType { Classic, Quorum }

public sealed record WatchSettings(IReadOnlyList<string> Roots, TimeSpan PollInterval, TimeSpan Settle, TimeSpan MaxInterval)
{
    public static readonly IReadOnlyList<string> DefaultRoots = ["/opt/MagAOX/rawimages", "/opt/MagAOX/telem", "/opt/MagAOX/logs"];
}

/// <param name="Concurrency">Copies in flight at once, per replica.</param>
/// <param name="CopyTimeout">
/// The longest one copy may take. RabbitMQ closes the channel of a delivery unacknowledged for its
/// consumer_timeout (30 min by default), which would redeliver the copy forever: this stays below it.
/// </param>
public sealed record ReplicatorSettings(int Concurrency, TimeSpan CopyTimeout)
{
    public static readonly TimeSpan DefaultCopyTimeout = TimeSpan.FromMinutes(25);
}

/// <param name="Listen">Where /health and /metrics are served; null: not served.</param>
/// <param name="LogFormat">Text lines for people, or one JSON object per line for log shippers.</param>
public sealed record MonitoringSettings(System.Net.IPEndPoint? Listen, LogFormat LogFormat)
{
    /// <summary>"127.0.0.1:9400", "0.0.0.0:9401", "[::1]:9400": an address and a port.</summary>
    public static bool TryParseListen(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out System.Net.IPEndPoint? endpoint) =>
        System.Net.IPEndPoint.TryParse(text, out endpoint) && endpoint.Port > 0;
}

public enum LogFormat { Text, Json }

/// <summary>
/// A replica: one folder on one host. A local one ("/mnt/backup") is a folder of the host whose
/// TOML file or add_replica names it, written only by that host's replicator; an ssh:// one is a
/// folder of the SSH host, written over SFTP by any replicator (and locally by one running there).
/// </summary>
/// <param name="Url">As written: a normalized absolute path for a local replica, or an ssh:// URL.</param>
/// <param name="Prefix">The folder the copies go under: local, or on the SSH host.</param>
/// <param name="Host">The host the folder is on.</param>
public sealed record ReplicaSettings(string Url, string Prefix, bool Enabled, string Host)
{
    /// <summary>Set for an SFTP replica.</summary>
    public SshReplicaSettings? Ssh { get; init; }

    public ReplicaSelection Selection { get; init; } = ReplicaSelection.Everything;

    /// <summary>How its copies are read back and checked, a slice at a time: by default a local folder's, not an SSH replica's.</summary>
    public FixitySettings Fixity { get; init; } = FixitySettings.Default;

    public string Kind => Ssh is null ? "local" : "ssh";

    /// <summary>Whether a replicator on <paramref name="thisHost"/> writes this replica over SFTP (an ssh:// replica of another host).</summary>
    public bool OverSftpFrom(string thisHost) => Ssh is not null && Host != thisHost;

    /// <summary>Copies in flight at once from a replicator on <paramref name="thisHost"/>.</summary>
    public int CopiesAtOnce(string thisHost, ReplicatorSettings replicator) =>
        OverSftpFrom(thisHost) && Ssh is { } ssh ? ssh.Concurrency ?? SshReplicaSettings.DefaultConcurrency : replicator.Concurrency;

    /// <summary>The name operators and queues see: "exao1:/mnt/backup", or the ssh:// URL.</summary>
    public string Name => ReplicaNames.Of(Kind, Host, Url);

    /// <summary>A replica registered in the database, with default settings for the SSH connection.</summary>
    public static ReplicaSettings FromRecord(string url, string kind, string host)
    {
        url = ReplicaUrls.Normalize(url);
        if (kind == "local")
            return new ReplicaSettings(url, url, Enabled: true, host);
        return SshUrl.TryParse(url, out var ssh, out var error)
            ? new ReplicaSettings(url, ssh.Path, Enabled: true, ssh.Host) { Ssh = new SshReplicaSettings(ssh), Fixity = FixitySettings.Off }
            : throw new ArgumentException($"replica {url}: {error}");
    }
}

/// <summary>
/// The rolling fixity check of a replica: every copy re-read and hashed once per Period (null: off),
/// a slice at a time, reading at most Rate.
/// </summary>
public sealed record FixitySettings(TimeSpan? Period, BandwidthSchedule Rate)
{
    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromDays(30);
    public const long DefaultRate = 20_000_000;
    public static readonly FixitySettings Default = new(DefaultPeriod, BandwidthSchedule.Fixed(DefaultRate));

    /// <summary>For an SSH replica unless its table says otherwise: every byte checked would cross the link.</summary>
    public static readonly FixitySettings Off = Default with { Period = null };

    public static FixitySettings DefaultFor(bool ssh) => ssh ? Off : Default;
}

/// <summary>How a replica is named to people and in queue names.</summary>
public static class ReplicaNames
{
    public static string Of(string kind, string host, string url) => kind == "local" ? $"{host}:{url}" : url;
}
