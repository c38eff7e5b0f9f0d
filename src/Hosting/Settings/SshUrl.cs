namespace Xtelemdb.Hosting.Settings;

/// <summary>The parts of ssh://[user@]host[:port]/path. Path is relative to the login's home unless it starts with "/".</summary>
public sealed record SshUrl(string? User, string Host, int? Port, string Path)
{
    public static bool TryParse(string url, out SshUrl parsed, out string error)
    {
        parsed = null!;
        error = "";
        if (!ReplicaUrls.IsSsh(url))
        {
            error = "expected ssh://[user@]host[:port]/path";
            return false;
        }
        var rest = url[ReplicaUrls.SshScheme.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == rest.Length - 1)
        {
            error = "expected a host and a path: ssh://[user@]host[:port]/path";
            return false;
        }
        var authority = rest[..slash];
        var path = ReplicaUrls.Normalize(url)[(ReplicaUrls.SshScheme.Length + slash + 1)..];
        string? user = null;
        if (authority.LastIndexOf('@') is var at and > 0)
            (user, authority) = (authority[..at], authority[(at + 1)..]);
        int? port = null;
        if (authority.LastIndexOf(':') is var colon and > 0)
        {
            if (!int.TryParse(authority[(colon + 1)..], out var number) || number is < 1 or > 65535)
            {
                error = $"not a port number: \"{authority[(colon + 1)..]}\"";
                return false;
            }
            (port, authority) = (number, authority[..colon]);
        }
        if (authority.Length == 0 || path.Split('/').Any(part => part == ".."))
        {
            error = "expected a host name and a path without \"..\"";
            return false;
        }
        parsed = new SshUrl(user, authority, port, path);
        return true;
    }
}

/// <summary>
/// The [replicas."ssh://…"] table. What it leaves out comes from ~/.ssh/config (HostName, User,
/// Port, IdentityFile), then OpenSSH's defaults. The key's passphrase is read from the
/// environment variable named by PassphraseEnv, never from the file.
/// </summary>
public sealed record SshReplicaSettings(SshUrl Url)
{
    public string? User { get; init; }
    public int? Port { get; init; }
    public string? IdentityFile { get; init; }
    public string? KnownHosts { get; init; }
    public string? PassphraseEnv { get; init; }
    /// <summary>Copies in flight at once to this replica; default <see cref="DefaultConcurrency"/>: over a long link a copy mostly waits for replies.</summary>
    public int? Concurrency { get; init; }
    /// <summary>SSH connections the copies share; default <see cref="DefaultConnections"/>.</summary>
    public int? Connections { get; init; }

    public const int DefaultConcurrency = 256, DefaultConnections = 4;
    /// <summary>Bytes per second across this replica's connections, over the week; null: no limit.</summary>
    public BandwidthSchedule? BandwidthLimit { get; init; }
}
