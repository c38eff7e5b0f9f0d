namespace Xtelemdb;

/// <summary>
/// How a replica's name is written, so that "/mnt/backup/" and "/mnt/backup" are one replica:
/// a local folder, or ssh://[user@]host[:port]/path (a path without a leading slash is relative
/// to the login's home: ssh://popeye/ceph/magao-x; an absolute one has two: ssh://popeye//data).
/// </summary>
public static class ReplicaUrls
{
    public const string SshScheme = "ssh://";

    public static bool IsSsh(string url) => url.StartsWith(SshScheme, StringComparison.Ordinal);

    public static string Normalize(string url)
    {
        if (IsSsh(url))
        {
            var pathStart = url.IndexOf('/', SshScheme.Length);
            return pathStart < 0 ? url : url[..(pathStart + 1)] + TrimTrailing(url[(pathStart + 1)..]);
        }
        return url.Contains("://", StringComparison.Ordinal) ? url : TrimTrailing(url);
    }

    /// <summary>"exao1:/mnt/backup", as rsync and scp write a host's folder: the host and the path.</summary>
    public static bool TrySplitHostPath(string name, out string host, out string path)
    {
        (host, path) = ("", name);
        if (IsSsh(name) || name.IndexOf(":/", StringComparison.Ordinal) is not (> 0 and var colon) || name[..colon].Contains('/'))
            return false;
        (host, path) = (name[..colon], name[(colon + 1)..]);
        return true;
    }

    static string TrimTrailing(string path) => path.Length <= 1 ? path : path.TrimEnd('/') is { Length: > 0 } trimmed ? trimmed : "/";
}
