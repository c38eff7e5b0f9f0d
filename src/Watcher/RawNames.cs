using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;

namespace Xtelemdb.Watcher;

/// <summary>
/// File names as the bytes they are. .NET decodes a name that is not valid UTF-8 with U+FFFD in
/// place of the bad bytes, and that string opens nothing; readdir(3) gives the bytes back, so such
/// a file can at least be named (bad bytes as \xNN) where it is reported.
/// </summary>
public static partial class RawNames
{
    const int NameOffset = 19; // struct dirent64 on Linux: ino 8, off 8, reclen 2, type 1, then the name

    [LibraryImport("libc", EntryPoint = "opendir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint OpenDir(string path);

    [LibraryImport("libc", EntryPoint = "readdir64", SetLastError = true)]
    private static partial nint ReadDir(nint dir);

    [LibraryImport("libc", EntryPoint = "closedir")]
    private static partial int CloseDir(nint dir);

    /// <summary>Whether a name as .NET decoded it may stand for bytes that are not UTF-8.</summary>
    public static bool MayBeMangled(ReadOnlySpan<char> name) => name.Contains('\uFFFD');

    /// <summary>The names in the folder that are not valid UTF-8: as .NET decodes each, and escaped.</summary>
    public static IReadOnlyList<(string Decoded, string Escaped)> NotUtf8(string folder)
    {
        var found = new List<(string, string)>();
        if (!OperatingSystem.IsLinux())
            return found;
        var dir = OpenDir(folder);
        if (dir == 0)
            return found;
        try
        {
            for (var entry = ReadDir(dir); entry != 0; entry = ReadDir(dir))
            {
                var name = entry + NameOffset;
                var length = 0;
                while (length < 256 && Marshal.ReadByte(name, length) != 0)
                    length++;
                var bytes = new byte[length];
                Marshal.Copy(name, bytes, 0, length);
                if (!Utf8.IsValid(bytes))
                    found.Add((Encoding.UTF8.GetString(bytes), Escape(bytes)));
            }
        }
        finally
        {
            _ = CloseDir(dir);
        }
        return found;
    }

    /// <summary>UTF-8 kept as text, every other byte as \xNN, and a backslash doubled so that the two never meet.</summary>
    public static string Escape(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(bytes.Length + 8);
        while (!bytes.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(bytes, out var rune, out var used) == System.Buffers.OperationStatus.Done)
            {
                text.Append(rune.Value == '\\' ? "\\\\" : rune.ToString());
                bytes = bytes[used..];
            }
            else
            {
                text.Append($"\\x{bytes[0]:x2}");
                bytes = bytes[1..];
            }
        }
        return text.ToString();
    }
}
