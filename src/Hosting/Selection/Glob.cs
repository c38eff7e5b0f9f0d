using System.Text;

namespace Xtelemdb.Hosting.Selection;

/// <summary>
/// A path pattern as .gitignore and rsync filters write it, for absolute origin paths:
/// "/opt/MagAOX/telem/**" is anchored at the root; a pattern with no slash ("*.tmp") matches a
/// name at any depth; "*" and "?" stay within one folder, "**" crosses folders; "[a-z]" is a class.
/// A pattern that matches a folder matches everything below it.
/// Translated to a regular expression that PostgreSQL (ARE) and .NET read alike, so that the
/// inventory selects in SQL over millions of rows and the replicator checks in memory the same way.
/// </summary>
public static class Glob
{
    public static string ToRegex(string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern))
            throw new FormatException("an empty pattern");
        if (pattern.Contains('\0'))
            throw new FormatException($"a pattern with a NUL character: \"{pattern}\"");
        var body = pattern.TrimEnd('/');
        if (body.Length == 0)
            return "^/.*$"; // "/": everything
        // No slash but a trailing one: a name at any depth, as in .gitignore.
        if (!body.Contains('/'))
            body = "**/" + body;
        var parts = body.TrimStart('/').Split('/');
        var regex = new StringBuilder("^");
        for (var i = 0; i < parts.Length; i++)
        {
            var part = parts[i];
            if (part.Length == 0)
                throw new FormatException($"an empty folder name (\"//\") in \"{pattern}\"");
            if (part == "**")
                regex.Append(i == parts.Length - 1 ? "/.+" : "(?:/[^/]+)*");
            else if (part.Contains("**", StringComparison.Ordinal))
                throw new FormatException($"\"**\" must be a whole folder name, as in \"/a/**/b\", in \"{pattern}\"");
            else
                regex.Append('/').Append(Component(part, pattern));
        }
        return regex.Append("(?:/.*)?$").ToString();
    }

    /// <summary>Any of the patterns, as one expression; null for none.</summary>
    public static string? AnyOf(IReadOnlyCollection<string> patterns) =>
        patterns.Count == 0 ? null : string.Join("|", patterns.Select(p => "(?:" + ToRegex(p) + ")"));

    static string Component(string part, string pattern)
    {
        var regex = new StringBuilder();
        for (var i = 0; i < part.Length; i++)
        {
            var c = part[i];
            switch (c)
            {
                case '*': regex.Append("[^/]*"); break;
                case '?': regex.Append("[^/]"); break;
                case '[':
                    var end = part.IndexOf(']', i + 2);
                    if (end < 0)
                        throw new FormatException($"an unclosed \"[\" in \"{pattern}\"");
                    regex.Append(Class(part[(i + 1)..end]));
                    i = end;
                    break;
                case '\\' when i + 1 < part.Length:
                    regex.Append(Literal(part[++i]));
                    break;
                default: regex.Append(Literal(c)); break;
            }
        }
        return regex.ToString();
    }

    /// <summary>"[abc]", "[a-z]", "[!0-9]" (or "[^0-9]"); a negated class never matches "/".</summary>
    static string Class(string inside)
    {
        var negated = inside[0] is '!' or '^';
        var regex = new StringBuilder(negated ? "[^/" : "[");
        foreach (var c in negated ? inside[1..] : inside)
            regex.Append(c is '-' or '/' ? c.ToString() : Literal(c));
        return regex.Append(']').ToString();
    }

    /// <summary>Only the metacharacters are escaped: .NET refuses an escaped "_" that PostgreSQL reads as "_".</summary>
    static string Literal(char c) => ".^$|?*+()[]{}\\".Contains(c) ? "\\" + c : c.ToString();
}
