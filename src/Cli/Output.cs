using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;

namespace Xtelemdb.Cli;

/// <summary>
/// What commands print: tables and a live status line on a terminal, plain lines when the output
/// is piped or logged, JSON with --json.
/// </summary>
public static class Output
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static bool IsTerminal => !Console.IsOutputRedirected;

    public static void WriteJson<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, Json));

    public static void Line(string text) => Console.WriteLine(text);

    /// <summary>Asks at a terminal; where nobody can answer, the answer is no.</summary>
    public static bool Confirm(string question)
    {
        if (Console.IsInputRedirected)
            return false;
        Console.Write(question);
        return Console.ReadLine()?.Trim() == "yes";
    }

    public static void Error(string text) => Console.Error.WriteLine($"xtelemdb: {text}");

    /// <summary>Rows as a table on a terminal, tab-separated with a header line otherwise.</summary>
    public static void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        if (IsTerminal)
        {
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var header in headers)
                table.AddColumn(Markup.Escape(header));
            foreach (var row in rows)
                table.AddRow(row.Select(cell => Markup.Escape(cell)).ToArray());
            AnsiConsole.Write(table);
            return;
        }
        Console.WriteLine(string.Join('\t', headers));
        foreach (var row in rows)
            Console.WriteLine(string.Join('\t', row));
    }

    /// <summary>
    /// Runs long work that reports its progress as a line of text: a live status line on a
    /// terminal, a plain line every few seconds otherwise, on standard error: standard output
    /// holds the results alone, which a script reads (--json).
    /// </summary>
    public static async Task<T> WithProgressAsync<T>(string title, Func<Action<string>, Task<T>> work)
    {
        if (IsTerminal)
        {
            return await AnsiConsole.Status().StartAsync(Markup.Escape(title), status =>
                work(text => status.Status(Markup.Escape($"{title}: {text}"))));
        }
        var clock = Stopwatch.StartNew();
        TimeSpan? last = null;
        return await work(text =>
        {
            if (last is { } shown && clock.Elapsed - shown < TimeSpan.FromSeconds(5))
                return;
            last = clock.Elapsed;
            Console.Error.WriteLine($"{title}: {text}");
        });
    }

    public static string Bytes(long bytes) => bytes switch
    {
        < 1L << 10 => $"{bytes} B",
        < 1L << 20 => $"{bytes / 1024.0:0.0} KiB",
        < 1L << 30 => $"{bytes / (1024.0 * 1024):0.0} MiB",
        < 1L << 40 => $"{bytes / (1024.0 * 1024 * 1024):0.0} GiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024 * 1024):0.0} TiB",
    };

    public static string Age(DateTime? since) => since is not { } time ? "-" : (DateTime.UtcNow - time) switch
    {
        var age when age < TimeSpan.FromMinutes(1) => $"{age.TotalSeconds:0}s",
        var age when age < TimeSpan.FromHours(1) => $"{age.TotalMinutes:0}m",
        var age when age < TimeSpan.FromDays(2) => $"{age.TotalHours:0.0}h",
        var age => $"{age.TotalDays:0}d",
    };

    public static string Rate(long count, TimeSpan elapsed) =>
        elapsed.TotalSeconds < 0.5 ? "-" : $"{count / elapsed.TotalSeconds:0}/s";
}
