using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Xtelemdb.Tests.Support;

/// <summary>
/// A real Prometheus server (Debian's package `prometheus`) on a loopback port, with a configuration
/// and a database of the test's own, asked through its HTTP API; killed when disposed.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    readonly Process process;
    readonly HttpClient http;
    readonly ConcurrentQueue<string> log = new();

    PrometheusServer(Process process, Uri api)
    {
        this.process = process;
        http = new HttpClient { BaseAddress = api };
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>What the server logged: shown when a check fails.</summary>
    public string Log => string.Join("\n", log);

    void Keep(string? line)
    {
        if (line is not null)
            log.Enqueue(line);
    }

    /// <summary>Writes <paramref name="config"/> to <paramref name="folder"/> and starts the server on it.</summary>
    public static PrometheusServer Start(string folder, string config)
    {
        Directory.CreateDirectory(folder);
        var configFile = Path.Combine(folder, "prometheus.yml");
        File.WriteAllText(configFile, config);
        var listen = new IPEndPoint(IPAddress.Loopback, Ports.FreeLoopback());
        var start = new ProcessStartInfo("prometheus")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            ArgumentList =
            {
                $"--config.file={configFile}", $"--storage.tsdb.path={Path.Combine(folder, "data")}",
                $"--web.listen-address={listen}", "--log.level=warn",
            },
        };
        try
        {
            return new PrometheusServer(Process.Start(start)!, new Uri($"http://{listen}/api/v1/"));
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"cannot run prometheus ({e.Message}): install Debian's package prometheus (scripts/services does)", e);
        }
    }

    /// <summary>Waits until every scrape target answers; fails naming those that do not.</summary>
    public Task WaitForTargetsUpAsync(int count, TimeSpan timeout) =>
        Eventually.True(async () =>
        {
            var targets = (await GetAsync("targets"))["activeTargets"]!.AsArray();
            foreach (var target in targets.Where(t => t!["health"]!.GetValue<string>() != "up"))
                TestContext.Progress.WriteLine($"waiting for {target!["scrapeUrl"]}: {target["health"]} {target["lastError"]}");
            return targets.Count == count && targets.All(t => t!["health"]!.GetValue<string>() == "up");
        }, timeout, $"{count} scrape targets up");

    /// <summary>The series an instant query returns; a query Prometheus refuses throws with its reason.</summary>
    public async Task<JsonArray> QueryAsync(string promql) =>
        (await GetAsync("query?query=" + Uri.EscapeDataString(promql)))["result"]!.AsArray();

    /// <summary>The "data" of an API answer.</summary>
    public async Task<JsonNode> GetAsync(string path)
    {
        using var response = await http.GetAsync(path);
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        if (body?["status"]?.GetValue<string>() != "success")
            throw new InvalidOperationException($"Prometheus answered {(int)response.StatusCode} to {path}: {body?["error"] ?? body?.ToJsonString()}");
        return body["data"]!;
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        process.Dispose();
        http.Dispose();
    }
}
