using System.Security.Cryptography;
using System.Text;

namespace Xtelemdb;

/// <summary>
/// The queues work is sent to. Sending (not publishing) declares the queue, so nothing a watcher
/// or replicator reports is dropped while the inventory has never run.
/// </summary>
public static class Queues
{
    /// <summary>The inventory's queue of observations.</summary>
    public const string FileChanged = "file-changed";

    /// <summary>The inventory's queue of copies made.</summary>
    public const string ReplicaUpdated = "replica-updated";

    /// <summary>
    /// One queue per (origin host, replica), so each backlog is its own line in the management UI:
    /// "replicate-exao1-to-mnt-backup-3f2a9c". The hash keeps two URLs with the same slug apart.
    /// </summary>
    public static string Replicate(string originHost, string replicaUrl) =>
        $"replicate-{Slug(originHost, 40)}-to-{Slug(replicaUrl, 60)}-{ShortHash(originHost + "\n" + replicaUrl)}";

    static string Slug(string text, int maxLength)
    {
        var slug = new StringBuilder(text.Length);
        foreach (var c in text.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c))
                slug.Append(c);
            else if (slug.Length > 0 && slug[^1] != '-')
                slug.Append('-');
        }
        var result = slug.ToString().Trim('-');
        return result.Length > maxLength ? result[..maxLength].TrimEnd('-') : result;
    }

    static string ShortHash(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..6];
}
