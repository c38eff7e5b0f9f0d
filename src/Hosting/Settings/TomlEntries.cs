using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Xtelemdb.Hosting.Settings;

/// <summary>One key of the file, with the table it sits in and the line it is on.</summary>
sealed record TomlEntry(IReadOnlyList<string> Table, string Key, ValueSyntax Value, int Line)
{
    public string Name => Table.Count == 0 ? Key : $"[{TomlEntries.Format(Table)}] {Key}";
}

/// <summary>A table header and its line, so that an empty table still counts.</summary>
sealed record TomlTable(IReadOnlyList<string> Name, int Line);

/// <summary>Flattens Tomlyn's syntax tree into keys with line numbers, for error messages that point at a line.</summary>
static class TomlEntries
{
    public static (IReadOnlyList<TomlTable> Tables, IReadOnlyList<TomlEntry> Entries) Read(string text, string source)
    {
        var document = SyntaxParser.Parse(text, source, true);
        if (document.HasErrors)
        {
            var first = document.Diagnostics.First(d => d.Kind == DiagnosticMessageKind.Error);
            throw new SettingsException($"{source}:{first.Span.Start.Line + 1}: not valid TOML: {first.Message}");
        }

        var tables = new List<TomlTable>();
        var entries = new List<TomlEntry>();
        foreach (var keyValue in document.KeyValues)
            entries.Add(Entry([], keyValue, source));
        foreach (var table in document.Tables)
        {
            var line = table.Span.Start.Line + 1;
            if (table is TableArraySyntax)
                throw new SettingsException($"{source}:{line}: [[{Format(KeyParts(table.Name!, source))}]]: arrays of tables are not used here; write [table] instead");
            var name = KeyParts(table.Name!, source);
            tables.Add(new TomlTable(name, line));
            foreach (var keyValue in table.Items)
                entries.Add(Entry(name, keyValue, source));
        }
        return (tables, entries);
    }

    static TomlEntry Entry(IReadOnlyList<string> table, KeyValueSyntax keyValue, string source)
    {
        var parts = KeyParts(keyValue.Key!, source);
        return new TomlEntry([.. table, .. parts[..^1]], parts[^1], keyValue.Value!, keyValue.Span.Start.Line + 1);
    }

    static string[] KeyParts(KeySyntax key, string source)
    {
        var parts = new List<string> { Part(key.Key, key, source) };
        foreach (var dotted in key.DotKeys)
            parts.Add(Part(dotted.Key, key, source));
        return [.. parts];
    }

    static string Part(BareKeyOrStringValueSyntax? part, KeySyntax key, string source) => part switch
    {
        BareKeySyntax bare => bare.Key!.Text!,
        StringValueSyntax quoted => quoted.Value!,
        _ => throw new SettingsException($"{source}:{key.Span.Start.Line + 1}: a key that cannot be read: {key}"),
    };

    public static string Format(IEnumerable<string> parts) =>
        string.Join('.', parts.Select(p => BareKeySyntax.IsBareKey(p) ? p : $"\"{p}\""));
}
