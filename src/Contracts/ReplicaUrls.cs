namespace Xtelemdb;

/// <summary>How a replica's name is written, so that "/mnt/backup/" and "/mnt/backup" are one replica.</summary>
public static class ReplicaUrls
{
    public static string Normalize(string url) =>
        url.Contains("://", StringComparison.Ordinal) || url.Length <= 1 ? url : url.TrimEnd('/');
}
