using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// The registered replicas a name typed by hand may have meant: "mnt/backup" or "backup/" for
/// "exao1:/mnt/backup", a different case. Used for a name that matched nothing as written.
/// </summary>
public static class ReplicaSpellings
{
    /// <summary>The replicas whose name or path ends with the name's path, folder by folder, or equals it but for case.</summary>
    public static IReadOnlyList<ReplicaRecord> Near(string name, IEnumerable<ReplicaRecord> replicas)
    {
        var path = ReplicaUrls.TrySplitHostPath(name, out var host, out var named) ? named : name;
        var tail = "/" + path.Trim().TrimStart('.').Trim('/');
        if (tail == "/")
            return [];
        return replicas
            .Where(r => host.Length == 0 || string.Equals(r.Host, host, StringComparison.OrdinalIgnoreCase))
            .Where(r => ReplicaUrls.Normalize(r.Url).EndsWith(tail, StringComparison.OrdinalIgnoreCase)
                || string.Equals(r.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            .ToArray();
    }

    /// <summary>A name without a leading slash or a scheme is relative: it cannot name a folder as written, so one near match is what it meant.</summary>
    public static bool IsRelative(string name) =>
        !ReplicaUrls.IsSsh(name) && !ReplicaUrls.TrySplitHostPath(name, out _, out _) && !name.StartsWith('/');
}
