namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// The Host entries of ~/.ssh/config that matter here (HostName, User, Port, IdentityFile,
/// UserKnownHostsFile), read as OpenSSH reads them: every matching Host block in order, the first
/// value of each key wins, IdentityFile accumulates. Operators name hosts such as "popeye" that exist only there.
/// </summary>
public sealed record SshConfigEntry(string? HostName, string? User, int? Port, IReadOnlyList<string> IdentityFiles, string? KnownHostsFile);

public static class SshConfigFile
{
    public static string DefaultPath => Path.Combine(Home, ".ssh", "config");

    static string Home => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    public static SshConfigEntry Resolve(string host, string? path = null)
    {
        path ??= DefaultPath;
        string? hostName = null, user = null, knownHosts = null;
        int? port = null;
        var identities = new List<string>();
        if (!File.Exists(path))
            return new SshConfigEntry(null, null, null, identities, null);

        var matching = true; // lines before the first Host apply to every host
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var split = line.IndexOfAny([' ', '\t', '=']);
            if (split < 0)
                continue;
            var key = line[..split].ToLowerInvariant();
            var value = line[(split + 1)..].Trim().TrimStart('=').Trim().Trim('"');
            switch (key)
            {
                case "host":
                    matching = Matches(host, value.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
                    break;
                case "match":
                    matching = false; // Match blocks are not interpreted: safer to ignore than to guess
                    break;
                case "hostname" when matching: hostName ??= value.Replace("%h", host, StringComparison.Ordinal); break;
                case "user" when matching: user ??= value; break;
                case "port" when matching && port is null && int.TryParse(value, out var number): port = number; break;
                case "identityfile" when matching: identities.Add(Expand(value, host)); break;
                case "userknownhostsfile" when matching: knownHosts ??= Expand(value.Split(' ')[0], host); break;
            }
        }
        return new SshConfigEntry(hostName, user, port, identities, knownHosts);
    }

    /// <summary>OpenSSH patterns: * and ?, several per line, "!" negates and then wins.</summary>
    static bool Matches(string host, IReadOnlyList<string> patterns)
    {
        var matched = false;
        foreach (var pattern in patterns)
        {
            var negated = pattern.StartsWith('!');
            if (!Glob(host, negated ? pattern[1..] : pattern))
                continue;
            if (negated)
                return false;
            matched = true;
        }
        return matched;
    }

    static bool Glob(string text, string pattern) =>
        System.Text.RegularExpressions.Regex.IsMatch(text,
            "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$",
            System.Text.RegularExpressions.RegexOptions.IgnoreCase);

    static string Expand(string path, string host)
    {
        path = path.Replace("%h", host, StringComparison.Ordinal).Replace("%d", Home, StringComparison.Ordinal);
        return path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(Home, path[2..]) : path;
    }
}
