using System.Globalization;
using System.Text.RegularExpressions;

namespace Xtelemdb.Hosting.Settings;

/// <summary>Durations as operators write them: "250ms", "2s", "5m", "1h", or "1h30m".</summary>
public static partial class Durations
{
    [GeneratedRegex(@"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+$")]
    private static partial Regex Pattern();

    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var match = Pattern().Match(text.Trim());
        if (!match.Success)
            return false;
        for (var i = 0; i < match.Groups[1].Captures.Count; i++)
        {
            var amount = double.Parse(match.Groups[1].Captures[i].Value, CultureInfo.InvariantCulture);
            value += match.Groups[2].Captures[i].Value switch
            {
                "ms" => TimeSpan.FromMilliseconds(amount),
                "s" => TimeSpan.FromSeconds(amount),
                "m" => TimeSpan.FromMinutes(amount),
                "h" => TimeSpan.FromHours(amount),
                _ => TimeSpan.FromDays(amount),
            };
        }
        return true;
    }
}
