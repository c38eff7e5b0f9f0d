namespace Xtelemdb.Cli;

/// <summary>
/// The seed's spelling, "xtelemdb sync continuous=true", rewritten in front of the parser into
/// the usual one, "xtelemdb sync --continuous true"; underscores become dashes.
/// </summary>
public static class KeyValueArguments
{
    public static string[] Rewrite(IEnumerable<string> args) => args.SelectMany(Rewrite).ToArray();

    static IEnumerable<string> Rewrite(string arg)
    {
        var equals = arg.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0 || arg.StartsWith('-') || !arg[..equals].All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_'))
            return [arg];
        return ["--" + arg[..equals].Replace('_', '-'), arg[(equals + 1)..]];
    }
}
