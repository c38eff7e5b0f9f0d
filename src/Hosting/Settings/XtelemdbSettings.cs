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
    public required IReadOnlyList<ReplicaSettings> Replicas { get; init; }
}

public sealed record DatabaseSettings(string Connection)
{
    public const string DefaultConnection = "Host=127.0.0.1;Port=5432;Database=xtelem;Username=xtelem";
}

/// <summary>The user and password come from XTELEMDB_BROKER_USER and XTELEMDB_BROKER_PASSWORD.</summary>
public sealed record BrokerSettings(Uri Uri)
{
    public static readonly Uri DefaultUri = new("amqp://127.0.0.1:5672/");

    public string User => Environment.GetEnvironmentVariable("XTELEMDB_BROKER_USER") is { Length: > 0 } user ? user : "guest";
    public string Password => Environment.GetEnvironmentVariable("XTELEMDB_BROKER_PASSWORD") is { Length: > 0 } password ? password : "guest";
}

public sealed record WatchSettings(IReadOnlyList<string> Roots, TimeSpan PollInterval, TimeSpan Settle, TimeSpan MaxInterval)
{
    public static readonly IReadOnlyList<string> DefaultRoots = ["/opt/MagAOX/rawimages", "/opt/MagAOX/telem", "/opt/MagAOX/logs"];
}

/// <param name="Concurrency">Copies in flight at once, per replica.</param>
public sealed record ReplicatorSettings(int Concurrency);

/// <param name="Url">The replica's name: a normalized absolute path for a local replica.</param>
/// <param name="Prefix">The folder the copies go under.</param>
public sealed record ReplicaSettings(string Url, string Prefix, bool Enabled);
