using System.Text.RegularExpressions;

namespace Xtelemdb.Storage;

/// <summary>
/// PostgreSQL's synchronous_standby_names ("pg2", "*", "FIRST 1 (pg2, pg3)", "ANY 2 (a, b, c)",
/// "2 (a, b)"): which standbys a commit waits for, and how many of them. Whether commits can go on
/// is told by the names of the walsenders connected, the only column of pg_stat_replication that
/// any user may read.
/// </summary>
public sealed partial record SynchronousStandbys(int Needed, IReadOnlyList<string> Names)
{
    public static SynchronousStandbys Parse(string setting)
    {
        var match = CountAndList().Match(setting.Trim());
        var needed = match.Success ? int.Parse(match.Groups["n"].Value) : 1;
        var list = match.Success ? match.Groups["list"].Value : setting;
        var names = list.Split(',').Select(n => n.Trim()).Where(n => n.Length > 0)
            .Select(n => n.Length > 1 && n.StartsWith('"') && n.EndsWith('"') ? n[1..^1] : n).ToArray();
        return new SynchronousStandbys(needed, names);
    }

    /// <summary>Whether that many of the named standbys (any, for "*") are among the walsenders connected.</summary>
    public bool AreConnected(IEnumerable<string> connected)
    {
        var streaming = connected.ToList();
        var matching = Names.Contains("*")
            ? streaming.Count
            // PostgreSQL compares them case-insensitively, double-quoted or not.
            : Names.Count(name => streaming.Contains(name, StringComparer.OrdinalIgnoreCase));
        return matching >= Needed;
    }

    [GeneratedRegex(@"^(?:(?:FIRST|ANY)\s+)?(?<n>\d+)\s*\((?<list>.*)\)$", RegexOptions.IgnoreCase)]
    private static partial Regex CountAndList();
}
