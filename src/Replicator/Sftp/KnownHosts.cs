using System.Security.Cryptography;
using System.Text;

namespace Xtelemdb.Replicator.Sftp;

public enum HostKeyStatus
{
    Known,
    Unknown,
    /// <summary>The host is listed, with other keys of this type: the key changed, or someone is in the middle.</summary>
    Changed,
    Revoked,
}

/// <summary>
/// OpenSSH's known_hosts: "host[,host…] type key", "[host]:port type key", hashed names
/// ("|1|salt|hmac", as ssh-keygen -H writes them), and the @revoked marker.
/// </summary>
public static class KnownHosts
{
    public static string DefaultPath => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts");

    public static HostKeyStatus Check(IEnumerable<string> files, string host, int port, string keyType, byte[] key)
    {
        var name = port == 22 ? host : $"[{host}]:{port}";
        var status = HostKeyStatus.Unknown;
        foreach (var file in files.Where(File.Exists))
        {
            foreach (var line in File.ReadLines(file))
            {
                var fields = line.Trim().Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 3 || fields[0].StartsWith('#'))
                    continue;
                var revoked = fields[0] == "@revoked";
                if (fields[0].StartsWith('@'))
                {
                    if (!revoked || fields.Length < 4)
                        continue; // @cert-authority: host certificates are not used here
                    fields = fields[1..];
                }
                if (!fields[0].Split(',').Any(pattern => NameMatches(pattern, name)))
                    continue;
                byte[] listed;
                try
                {
                    listed = Convert.FromBase64String(fields[2]);
                }
                catch (FormatException)
                {
                    continue;
                }
                var same = fields[1] == keyType && listed.AsSpan().SequenceEqual(key);
                if (revoked && same)
                    return HostKeyStatus.Revoked;
                if (same)
                    status = HostKeyStatus.Known;
                else if (fields[1] == keyType && status == HostKeyStatus.Unknown)
                    status = HostKeyStatus.Changed;
            }
        }
        return status;
    }

    /// <summary>The line that trusts a key, as ssh-keyscan would print it.</summary>
    public static string Line(string host, int port, string keyType, byte[] key) =>
        $"{(port == 22 ? host : $"[{host}]:{port}")} {keyType} {Convert.ToBase64String(key)}";

    /// <summary>OpenSSH's fingerprint: "SHA256:" and the unpadded base64 of the key's SHA-256.</summary>
    public static string Fingerprint(byte[] key) => "SHA256:" + Convert.ToBase64String(SHA256.HashData(key)).TrimEnd('=');

    static bool NameMatches(string pattern, string name)
    {
        if (!pattern.StartsWith("|1|", StringComparison.Ordinal))
            return string.Equals(pattern, name, StringComparison.OrdinalIgnoreCase);
        var parts = pattern.Split('|');
        if (parts.Length != 4)
            return false;
        try
        {
            using var hmac = new HMACSHA1(Convert.FromBase64String(parts[2]));
            return hmac.ComputeHash(Encoding.ASCII.GetBytes(name)).AsSpan().SequenceEqual(Convert.FromBase64String(parts[3]));
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
