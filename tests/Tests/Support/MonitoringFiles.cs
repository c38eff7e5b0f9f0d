using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Serialization;

namespace Xtelemdb.Tests.Support;

/// <summary>An alerting rule of deploy/prometheus/xtelemdb-alerts.yml.</summary>
/// <param name="Labels">The labels its expression groups or matches on, and those its annotations name.</param>
public sealed record AlertRule(string Name, string Expression, IReadOnlyList<string> Selectors, IReadOnlyList<string> Labels);

/// <summary>A query of a panel (or a variable) of deploy/grafana/xtelemdb-dashboard.json.</summary>
/// <param name="Labels">The labels it must find: a variable's values.</param>
public sealed record PanelQuery(string Panel, string Expression, IReadOnlyList<string> Selectors, IReadOnlyList<string> Labels);

/// <summary>Reads what deploy/prometheus and deploy/grafana ask of the services' metrics.</summary>
public static partial class MonitoringFiles
{
    public static string Deploy(string path) => Path.Combine(Repository.Root(), "deploy", path);

    public static string AlertsFile => Deploy("prometheus/xtelemdb-alerts.yml");

    public static string DashboardFile => Deploy("grafana/xtelemdb-dashboard.json");

    public static IReadOnlyList<AlertRule> AlertRules()
    {
        var file = new DeserializerBuilder().Build().Deserialize<Dictionary<string, List<Dictionary<string, object>>>>(File.ReadAllText(AlertsFile));
        return file["groups"]
            .SelectMany(group => (List<object>)group["rules"])
            .Cast<Dictionary<object, object>>()
            .Select(rule =>
            {
                var expression = (string)rule["expr"];
                var annotations = string.Join("\n", ((Dictionary<object, object>)rule["annotations"]).Values);
                var labels = Grouping().Matches(expression).SelectMany(m => m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    .Concat(AnnotationLabel().Matches(annotations).Select(m => m.Groups[1].Value));
                return new AlertRule((string)rule["alert"], expression, Selectors(expression), [.. labels.Distinct()]);
            })
            .ToArray();
    }

    public static JsonObject Dashboard() => JsonNode.Parse(File.ReadAllText(DashboardFile))!.AsObject();

    /// <summary>
    /// Every panel's queries, as Grafana sends them: the variable $replica at "All" (.*) and
    /// $__rate_interval at a minute; and each variable's label_values(metric, label).
    /// </summary>
    public static IReadOnlyList<PanelQuery> PanelQueries()
    {
        var dashboard = Dashboard();
        var panels = dashboard["panels"]!.AsArray()
            .SelectMany(panel => panel!["targets"]?.AsArray().Select(target => (Panel: $"panel \"{panel["title"]}\"", Expression: target!["expr"]!.GetValue<string>())) ?? [])
            .Select(q =>
            {
                var expression = q.Expression.Replace("$replica", ".*", StringComparison.Ordinal).Replace("$__rate_interval", "1m", StringComparison.Ordinal);
                return new PanelQuery(q.Panel, expression, Selectors(expression), []);
            });
        var variables = dashboard["templating"]!["list"]!.AsArray()
            .Where(variable => variable!["type"]!.GetValue<string>() == "query")
            .Select(variable =>
            {
                var values = LabelValues().Match(variable!["query"]!.GetValue<string>());
                Assert.That(values.Success, $"variable {variable["name"]}: label_values(metric, label)");
                return new PanelQuery($"variable {variable["name"]}", values.Groups[1].Value, [values.Groups[1].Value], [values.Groups[2].Value]);
            });
        return [.. panels, .. variables];
    }

    /// <summary>The metric selectors of an expression, with their label matchers: xtelemdb's, RabbitMQ's and up.</summary>
    public static IReadOnlyList<string> Selectors(string expression) =>
        [.. Selector().Matches(expression).Select(m => m.Value).Distinct()];

    /// <summary>The metric a selector names.</summary>
    public static string Metric(string selector) => selector.Split('{')[0];

    [GeneratedRegex(@"\b(?:xtelemdb_\w+|rabbitmq_\w+|up)\b(?:\{[^}]*\})?")]
    private static partial Regex Selector();

    [GeneratedRegex(@"\b(?:by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"^label_values\((\w+),\s*(\w+)\)$")]
    private static partial Regex LabelValues();

    [GeneratedRegex(@"\$labels\.(\w+)")]
    private static partial Regex AnnotationLabel();
}
