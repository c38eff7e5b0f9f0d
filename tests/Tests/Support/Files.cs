using System.IO.Hashing;

namespace Xtelemdb.Tests.Support;

public static class Files
{
    public static void Write(string path, int bytes, int seed = 1)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var data = new byte[bytes];
        new Random(seed).NextBytes(data);
        File.WriteAllBytes(path, data);
    }

    /// <summary>The checksum the replicator records: XxHash3 of the bytes.</summary>
    public static string Checksum(string path)
    {
        var hash = new XxHash3();
        using var stream = File.OpenRead(path);
        hash.Append(stream);
        return "xxh3:" + Convert.ToHexStringLower(hash.GetCurrentHash());
    }

    /// <summary>The same checksum, of bytes already read.</summary>
    public static string Checksum(byte[] bytes) => "xxh3:" + Convert.ToHexStringLower(XxHash3.Hash(bytes));

    public static void AssertSameFile(string source, string copy)
    {
        Assert.That(File.Exists(copy), Is.True, $"{copy} exists");
        Assert.That(new FileInfo(copy).Length, Is.EqualTo(new FileInfo(source).Length), "size");
        Assert.That(Microseconds.Truncate(File.GetLastWriteTimeUtc(copy)), Is.EqualTo(Microseconds.Truncate(File.GetLastWriteTimeUtc(source))), "mtime");
        Assert.That(Checksum(copy), Is.EqualTo(Checksum(source)), "bytes");
    }
}
