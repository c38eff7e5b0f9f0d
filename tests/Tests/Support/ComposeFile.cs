using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace Xtelemdb.Tests.Support;

/// <summary>One service of a compose file, with ${VARIABLES} already substituted.</summary>
public sealed record ComposeService(
    string Name,
    bool Built,
    IReadOnlyList<string> Command,
    IReadOnlyDictionary<string, string> Environment,
    IReadOnlyList<(string Source, string Target)> Volumes,
    IReadOnlyList<string> HealthCheck,
    IReadOnlyDictionary<string, string> DependsOn);

/// <summary>
/// Reads a compose file the way docker compose does for what the tests need: YAML merge keys,
/// ${VAR}, ${VAR:-default} and ${VAR:?error} from the given variables, and relative bind mounts.
/// </summary>
public static partial class ComposeFile
{
    public static IReadOnlyDictionary<string, ComposeService> Load(string path, IReadOnlyDictionary<string, string> variables)
    {
        using var reader = new StringReader(Interpolate(File.ReadAllText(path), variables));
        var root = new DeserializerBuilder().Build().Deserialize<Dictionary<object, object>>(new MergingParser(new Parser(reader)));
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return Map(root["services"]).ToDictionary(s => s.Key, s => Service(s.Key, Map(s.Value), folder));
    }

    /// <summary>KEY=VALUE lines, such as deploy/env.example; comments and blank lines skipped.</summary>
    public static Dictionary<string, string> ReadEnvFile(string path) =>
        File.ReadAllLines(path)
            .Where(line => line.Contains('=') && !line.TrimStart().StartsWith('#'))
            .Select(line => line.Split('=', 2))
            .ToDictionary(parts => parts[0].Trim(), parts => parts[1].Trim());

    static ComposeService Service(string name, Dictionary<string, object> service, string folder)
    {
        var volumes = List(service.GetValueOrDefault("volumes")).Select(v =>
        {
            var parts = v.Split(':');
            var source = parts[0].StartsWith('.') ? Path.GetFullPath(Path.Combine(folder, parts[0])) : parts[0];
            return (source, parts[1]);
        }).ToArray();
        var health = service.GetValueOrDefault("healthcheck") is { } check ? List(Map(check).GetValueOrDefault("test")) : [];
        var dependsOn = service.GetValueOrDefault("depends_on") is { } deps
            ? Map(deps).ToDictionary(d => d.Key, d => Map(d.Value).GetValueOrDefault("condition") as string ?? "service_started")
            : [];
        return new ComposeService(
            name,
            service.ContainsKey("build"),
            List(service.GetValueOrDefault("command")),
            service.GetValueOrDefault("environment") is { } env ? Map(env).ToDictionary(e => e.Key, e => e.Value?.ToString() ?? "") : [],
            volumes,
            health,
            dependsOn);
    }

    static string Interpolate(string text, IReadOnlyDictionary<string, string> variables) =>
        Variable().Replace(text, match =>
        {
            var name = match.Groups["name"].Value;
            var value = variables.GetValueOrDefault(name);
            return match.Groups["op"].Value switch
            {
                ":-" => string.IsNullOrEmpty(value) ? match.Groups["arg"].Value : value,
                ":?" => string.IsNullOrEmpty(value) ? throw new InvalidOperationException($"{name}: {match.Groups["arg"].Value}") : value,
                _ => value ?? "",
            };
        });

    static Dictionary<string, object> Map(object? node) =>
        node is Dictionary<object, object> map ? map.ToDictionary(e => e.Key.ToString()!, e => e.Value) : [];

    static IReadOnlyList<string> List(object? node) =>
        node is List<object> list ? list.Select(i => i.ToString()!).ToArray() : [];

    [GeneratedRegex(@"\$\{(?<name>\w+)(?:(?<op>:[-?])(?<arg>[^}]*))?\}")]
    private static partial Regex Variable();
}
