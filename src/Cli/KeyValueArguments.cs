using System.CommandLine;

namespace Xtelemdb.Cli;

/// <summary>
/// The original Python tool's spelling, "xtelemdb sync continuous=true", rewritten in front of the parser into
/// the usual one, "xtelemdb sync --continuous true" (underscores become dashes). Only words whose
/// key names an option are rewritten, so a value such as a path with "=" in it passes untouched.
/// </summary>
public static class KeyValueArguments
{
    public static string[] Rewrite(RootCommand root, IEnumerable<string> args)
    {
        var options = OptionNames(root).ToHashSet(StringComparer.Ordinal);
        return args.SelectMany(arg =>
        {
            var equals = arg.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || arg.StartsWith('-'))
                return [arg];
            var option = "--" + arg[..equals].Replace('_', '-');
            return options.Contains(option) ? [option, arg[(equals + 1)..]] : new[] { arg };
        }).ToArray();
    }

    static IEnumerable<string> OptionNames(Command command) =>
        command.Options.Select(o => o.Name).Concat(command.Subcommands.SelectMany(OptionNames));
}
