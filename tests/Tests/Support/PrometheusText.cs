using System.Globalization;

namespace Xtelemdb.Tests.Support;

/// <summary>Reads what a /metrics endpoint serves.</summary>
public static class PrometheusText
{
    /// <summary>The sum of a series' samples whose labels contain the given text ("" for all).</summary>
    public static double Sum(string metrics, string name, string label) =>
        metrics.Split('\n')
            .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) && line.Contains(label, StringComparison.Ordinal))
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
}
