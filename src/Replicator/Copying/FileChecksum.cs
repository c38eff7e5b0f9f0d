using System.IO.Hashing;

namespace Xtelemdb.Replicator.Copying;

/// <summary>The checksum recorded with a copy: "xxh3:" and the hex XxHash3 of the bytes.</summary>
public static class FileChecksum
{
    public const string Prefix = "xxh3:";

    public static string Format(XxHash3 hash) => Prefix + Convert.ToHexStringLower(hash.GetCurrentHash());

    public static async Task<string> OfFileAsync(string path, CancellationToken cancellationToken)
    {
        var hash = new XxHash3();
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20, FileOptions.SequentialScan | FileOptions.Asynchronous);
        await hash.AppendAsync(stream, cancellationToken);
        return Format(hash);
    }

    /// <summary>Whether the file, still at this version once read, holds the bytes of this checksum.</summary>
    public static async Task<bool> HoldsAsync(string path, Hosting.FileVersion version, string checksum, CancellationToken cancellationToken)
    {
        try
        {
            return await OfFileAsync(path, cancellationToken) == checksum && Hosting.FileVersion.Of(path) is { } after && after.SameAs(version);
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }
}
