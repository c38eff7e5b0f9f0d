using System.Globalization;
using System.Text.RegularExpressions;

namespace Xtelemdb.Hosting.Settings;

/// <summary>
/// A replica's bandwidth limit over the week, in rclone's --bwlimit timetable syntax:
/// "08:00,20MB/s 20:00,off" limits from 08:00 to 20:00 every day; "Mon-08:00,5MB/s Sat-00:00,off"
/// names days. Each entry holds until the next; before the first of a day, the last one of the day
/// before still holds. A single rate ("50MB/s") holds all the time. Times are the replicator's local time.
/// </summary>
public sealed partial class BandwidthSchedule
{
    const int MinutesPerWeek = 7 * 24 * 60;

    /// <summary>(minute of the week from Sunday 00:00, bytes per second or null for no limit), sorted.</summary>
    readonly (int Minute, long? Rate)[] entries;

    BandwidthSchedule((int, long?)[] entries) => this.entries = entries;

    public static BandwidthSchedule Fixed(long bytesPerSecond) => new([(0, bytesPerSecond)]);

    /// <summary>Bytes per second allowed at this local time; null: no limit.</summary>
    public long? RateAt(DateTime local)
    {
        var minute = (int)local.DayOfWeek * 24 * 60 + local.Hour * 60 + local.Minute;
        var current = entries[^1].Rate; // the week wraps: Saturday's last entry holds into Sunday
        foreach (var (at, rate) in entries)
        {
            if (at > minute)
                break;
            current = rate;
        }
        return current;
    }

    /// <summary>Parses a rate or a timetable; the exception's message names the part that is wrong.</summary>
    /// <exception cref="FormatException"/>
    public static BandwidthSchedule Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new FormatException("it is empty: give a rate, \"off\", or a timetable");
        if (!text.Contains(','))
            return Rate(text.Trim()) is { } rate ? Fixed(rate) : new([(0, null)]);
        var parts = CommaSpace().Replace(text, ",").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var entries = new List<(int, long?)>();
        foreach (var part in parts)
        {
            var match = EntryPattern().Match(part);
            if (!match.Success)
                throw new FormatException($"\"{part}\" is not a timetable entry: expected HH:MM,RATE or Day-HH:MM,RATE (e.g. \"08:00,20MB/s\", \"Sat-00:00,off\")");
            var (hour, minute) = (int.Parse(match.Groups["h"].Value, CultureInfo.InvariantCulture), int.Parse(match.Groups["m"].Value, CultureInfo.InvariantCulture));
            if (hour > 23 || minute > 59)
                throw new FormatException($"\"{part}\": {match.Groups["h"].Value}:{match.Groups["m"].Value} is not a time of day");
            var rate = Rate(match.Groups["rate"].Value);
            var ofDay = hour * 60 + minute;
            if (match.Groups["day"].Success)
                entries.Add((Day(match.Groups["day"].Value, part) * 24 * 60 + ofDay, rate));
            else
                entries.AddRange(Enumerable.Range(0, 7).Select(day => (day * 24 * 60 + ofDay, rate)));
        }
        var sorted = entries.OrderBy(e => e.Item1).ToArray();
        var twice = sorted.GroupBy(e => e.Item1).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null)
            throw new FormatException($"the timetable \"{text}\" names the time {Describe(twice.Key)} twice");
        return new(sorted);
    }

    /// <summary>"off", "20MB/s", "10MiB/s", "800KB/s", bytes per second as a number, or rclone's "512k", "10M", "1G" (KiB/s, MiB/s, GiB/s).</summary>
    static long? Rate(string text)
    {
        if (text.Equals("off", StringComparison.OrdinalIgnoreCase))
            return null;
        var match = RatePattern().Match(text);
        if (!match.Success)
            throw new FormatException($"\"{text}\" is not a rate: expected e.g. \"50MB/s\", \"10MiB/s\", \"512k\" or \"off\"");
        var unit = match.Groups[2].Value switch
        {
            "" or "B" => 1L,
            "KB" => 1000L, "MB" => 1000_000L, "GB" => 1000_000_000L,
            "k" or "K" or "KiB" => 1L << 10, "M" or "MiB" => 1L << 20, _ => 1L << 30,
        };
        var rate = (long)(double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) * unit);
        return rate > 0 ? rate : throw new FormatException($"\"{text}\" is not a rate above zero; \"off\" means no limit");
    }

    static int Day(string name, string part) =>
        Array.FindIndex(Enum.GetNames<DayOfWeek>(), d => d.StartsWith(name, StringComparison.OrdinalIgnoreCase)) is var day and >= 0 && name.Length >= 3
            ? day : throw new FormatException($"\"{part}\": {name} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)");

    static string Describe(int minute) => $"{(DayOfWeek)(minute / (24 * 60))} {minute % (24 * 60) / 60:00}:{minute % 60:00}";

    public override string ToString() => string.Join(' ', entries.Select(e => $"{Describe(e.Minute)},{(e.Rate is { } r ? $"{r}B/s" : "off")}"));

    [GeneratedRegex(@"^(?:(?<day>[A-Za-z]+)-)?(?<h>\d{1,2}):(?<m>\d{2}),(?<rate>\S+)$")]
    private static partial Regex EntryPattern();

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*([KMG]i?B|B|[kKMG]|)(?:/s)?$")]
    private static partial Regex RatePattern();

    [GeneratedRegex(@"\s*,\s*")]
    private static partial Regex CommaSpace();
}
