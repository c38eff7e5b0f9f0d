using System.Text.RegularExpressions;

namespace Xtelemdb.Hosting.Selection;

/// <summary>
/// What a replica receives: files of these origin hosts (null: every host) whose path matches an
/// include pattern (none: every path) and no exclude pattern. Patterns as <see cref="Glob"/> reads them.
/// </summary>
public sealed record ReplicaSelection
{
    public static readonly ReplicaSelection Everything = new(null, [], []);

    /// <summary>"." matches a newline, as in PostgreSQL.</summary>
    const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.Singleline;

    public ReplicaSelection(IReadOnlyList<string>? hosts, IReadOnlyList<string> include, IReadOnlyList<string> exclude)
    {
        foreach (var host in hosts ?? [])
            MessageGuard.Host(host);
        Hosts = hosts is { Count: > 0 } ? hosts.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray() : null;
        Include = include;
        Exclude = exclude;
        IncludeRegex = Compile(include, "include");
        ExcludeRegex = Compile(exclude, "exclude");
        // Compiled here, so that an expression .NET cannot read fails when the selection is made, not at the first copy.
        includeRegex = IncludeRegex is null ? null : new Regex(IncludeRegex, Options);
        excludeRegex = ExcludeRegex is null ? null : new Regex(ExcludeRegex, Options);
    }

    public IReadOnlyList<string>? Hosts { get; }
    public IReadOnlyList<string> Include { get; }
    public IReadOnlyList<string> Exclude { get; }
    /// <summary>The include patterns as one regular expression (PostgreSQL's ~), or null.</summary>
    public string? IncludeRegex { get; }
    public string? ExcludeRegex { get; }

    public bool SelectsHost(string host) => Hosts is null || Hosts.Contains(host, StringComparer.Ordinal);

    /// <summary>
    /// As PostgreSQL reads the same expressions, except at the edges of .NET's regular expressions
    /// (a path ending in a newline; characters outside the Basic Multilingual Plane): where it
    /// matters, the database's answer decides.
    /// </summary>
    public bool Selects(string host, string path) =>
        SelectsHost(host)
        && (includeRegex is null || includeRegex.IsMatch(path))
        && (excludeRegex is null || !excludeRegex.IsMatch(path));

    readonly Regex? includeRegex, excludeRegex;

    public bool SameAs(ReplicaSelection other) =>
        (Hosts ?? []).SequenceEqual(other.Hosts ?? []) && Include.SequenceEqual(other.Include) && Exclude.SequenceEqual(other.Exclude);

    public override string ToString() =>
        $"hosts {(Hosts is null ? "all" : string.Join(", ", Hosts))}; include {Describe(Include, "all")}; exclude {Describe(Exclude, "none")}";

    static string Describe(IReadOnlyList<string> patterns, string none) => patterns.Count == 0 ? none : string.Join(", ", patterns);

    static string? Compile(IReadOnlyList<string> patterns, string what)
    {
        try
        {
            return Glob.AnyOf(patterns);
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"{what}: {e.Message}", e);
        }
    }
}
