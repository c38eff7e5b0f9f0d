using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;
using YamlDotNet.Serialization;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// deploy/prometheus's alerting rules and deploy/grafana's dashboard: promtool's checks and unit
/// tests, then a real Prometheus scraping a running pipeline and RabbitMQ, where every panel's
/// query and every rule's metric selectors must find data, with the labels the rules name.
/// </summary>
public sealed class AlertsAndDashboardTests : PipelineTest
{
    static readonly TimeSpan Timeout = Eventually.Patience;

    /// <summary>The job names of prometheus.yml, which the rules and the dashboard name.</summary>
    static readonly string[] Jobs = ["xtelemdb-inventory", "xtelemdb-watcher", "xtelemdb-replicator", "rabbitmq"];

    [Test]
    public void When_promtool_checks_the_rules_and_the_configuration_and_runs_the_unit_tests_Should_pass()
    {
        foreach (var arguments in new[]
                 {
                     new[] { "check", "rules", "xtelemdb-alerts.yml" },
                     ["test", "rules", "xtelemdb-alerts.test.yml"],
                     ["check", "config", "prometheus.yml"],
                 })
        {
            var (exit, output) = Promtool(arguments);
            TestContext.Progress.WriteLine($"promtool {string.Join(' ', arguments)}:\n{output}");
            Assert.That(exit, Is.Zero, $"promtool {string.Join(' ', arguments)}:\n{output}");
            Assert.That(output, Does.Contain("SUCCESS"));
        }
    }

    [Test]
    public void When_the_dashboard_is_imported_Should_every_query_use_the_datasource_variable()
    {
        var dashboard = MonitoringFiles.Dashboard();
        var variables = dashboard["templating"]!["list"]!.AsArray();
        Assert.That(variables.Any(v => v!["type"]!.GetValue<string>() == "datasource" && v["name"]!.GetValue<string>() == "datasource"
            && v["query"]!.GetValue<string>() == "prometheus"), "a datasource variable named datasource, of Prometheus data sources");
        var sources = dashboard["panels"]!.AsArray().Where(p => p!["type"]!.GetValue<string>() != "row")
            .SelectMany(p => new[] { (p!["title"]!.GetValue<string>(), p["datasource"]) }
                .Concat(p["targets"]!.AsArray().Select(t => (p["title"]!.GetValue<string>(), t!["datasource"]))))
            .Concat(variables.Where(v => v!["type"]!.GetValue<string>() == "query").Select(v => (v!["name"]!.GetValue<string>(), v["datasource"])))
            .ToArray();
        Assert.That(sources, Is.Not.Empty);
        foreach (var (panel, source) in sources)
            Assert.That(source?["uid"]?.GetValue<string>(), Is.EqualTo("${datasource}"), $"{panel}: its datasource is the variable, not a fixed uid");
        Assert.That(MonitoringFiles.PanelQueries().Where(q => q.Selectors.Count == 0), Is.Empty, "every query names a metric");
    }

    [Test]
    [NonParallelizable] // the backlog and fixity gauges hold the last in-process inventory's and replicator's values
    public async Task When_a_pipeline_copies_and_fails_under_a_real_Prometheus_Should_every_panel_and_rule_find_the_metrics_served()
    {
        using var http = new HttpClient();
        var rabbitExporter = $"{TestServices.Management.Host}:15692";
        await AssertRabbitExporterAsync(http, rabbitExporter);

        // Three replicas: one that takes the copies, one whose disk is not mounted (no marker), one whose disk is full.
        var backup = pipeline.Backup();
        var unmounted = Path.Combine(pipeline.Root, "unmounted");
        Directory.CreateDirectory(unmounted);
        var full = Path.Combine(pipeline.Root, "full");
        Directory.CreateDirectory(full);
        Shell.Run("mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", full);
        try
        {
            TestPipeline.Mark(full);
            var listen = new IPEndPoint(IPAddress.Loopback, Ports.FreeLoopback());
            var settings = pipeline.Configure([backup, unmounted, full]);
            settings = settings with { Monitoring = settings.Monitoring with { Listen = listen } };
            await pipeline.StartAsync(settings, PipelineServices.All);
            var metrics = await CopyAndFailAsync(http, listen, settings, backup, unmounted, full);
            AssertNewGauges(metrics, backup, unmounted);

            await using var prometheus = PrometheusServer.Start(Path.Combine(pipeline.Root, "prometheus"), PrometheusConfig(listen.ToString(), rabbitExporter));
            try
            {
                await prometheus.WaitForTargetsUpAsync(Jobs.Length, Timeout);
                // A failure while Prometheus watches: a counter's first value is no increase.
                Files.Write(Path.Combine(pipeline.Data, "second.fits"), 100_000);
                await AssertEveryQueryFindsDataAsync(prometheus);
                await AssertRulesEvaluateAsync(prometheus);
                await AssertAlertsAsync(prometheus, backup, unmounted, full);
            }
            catch
            {
                TestContext.Progress.WriteLine("Prometheus logged:\n" + prometheus.Log);
                throw;
            }
        }
        finally
        {
            Shell.Run("umount", "-l", full);
        }
    }

    /// <summary>
    /// A file last modified seven hours ago, moved in whole: copied to one replica, failed on the
    /// others (their _error queues); a resync answered and a malformed one refused. Returns /metrics
    /// once it says all that.
    /// </summary>
    async Task<string> CopyAndFailAsync(HttpClient http, IPEndPoint listen, Hosting.Settings.XtelemdbSettings settings, string backup, string unmounted, string full)
    {
        var staged = Path.Combine(pipeline.Root, "night.fits");
        Files.Write(staged, 100_000);
        File.SetLastWriteTimeUtc(staged, DateTime.UtcNow.AddHours(-7));
        var night = Path.Combine(pipeline.Data, "night.fits");
        File.Move(staged, night);
        await pipeline.ReplicatedAsync(backup, night);
        foreach (var replica in new[] { unmounted, full })
        {
            var errorQueue = ErrorQueue(replica);
            // Twice when the replica's back-fill and the watcher's report both ask for it. Until then, the queues say where it is.
            await Eventually.Get(async () => (await pipeline.Management.PeekAsync(pipeline.Name, errorQueue)).Count >= 1 ? "" : await QueueStateAsync(),
                state => state == "", Timeout, $"the failed copy in {errorQueue}");
        }
        // Resyncs as an operator publishes them in the management UI: one answered, one typed wrong (refused, kept in resync-requested_error).
        await pipeline.Management.PublishAsync(pipeline.Name, Queues.ResyncExchange, "", $$"""{"replica": "{{backup}}"}""");
        await pipeline.Management.PublishAsync(pipeline.Name, Queues.ResyncExchange, "", "{ this is not json");
        await Eventually.True(async () => (await pipeline.Management.PeekAsync(pipeline.Name, RefusedResyncs)).Count == 1, Timeout, $"the refused resync in {RefusedResyncs}");
        // The inventory counted the backlog before the file existed, and counts again only in 30 s: a second one counts at its start.
        await pipeline.StartAsync(settings with { Monitoring = settings.Monitoring with { Listen = null } }, PipelineServices.Inventory);
        return await Eventually.Get<string>(async () => await http.GetStringAsync($"http://{listen}/metrics"),
            text => PrometheusText.Sum(text!, "xtelemdb_replica_origin_backlog_files", $"replica=\"{TestPipeline.Named(unmounted)}\"") == 1
                && PrometheusText.Sum(text!, "xtelemdb_replicator_failures_total", "reason=\"full\"") > 0
                && PrometheusText.Sum(text!, "xtelemdb_inventory_resyncs_total", "outcome=\"requested\"") > 0
                && PrometheusText.Sum(text!, "xtelemdb_inventory_resyncs_total", "outcome=\"refused\"") > 0,
            Timeout, "/metrics with the new backlog, the failed copies and both resyncs");
    }

    async Task<string> QueueStateAsync() =>
        string.Join("; ", (await pipeline.Management.QueuesAsync(pipeline.Name)).Select(q => $"{q["name"]}: {q["messages"]} messages, {q["consumers"]} consumers"));

    /// <summary>The gauges the alerts needed: a replica's marker, each pair's backlog, the watcher's poll, the inventory's count.</summary>
    static void AssertNewGauges(string metrics, string backup, string unmounted)
    {
        double Value(string name, string label = "") => PrometheusText.Sum(metrics, name, label);
        Assert.That(Value("xtelemdb_replica_available", $"replica=\"{TestPipeline.Named(backup)}\""), Is.EqualTo(1));
        Assert.That(Value("xtelemdb_replica_available", $"replica=\"{TestPipeline.Named(unmounted)}\""), Is.Zero);
        // Each pair has its series, the one in sync at 0.
        Assert.That(metrics.Split('\n').Where(l => l.StartsWith("xtelemdb_replica_origin_backlog_files{", StringComparison.Ordinal)
                && l.Contains($"origin_host=\"{TestPipeline.Host}\"", StringComparison.Ordinal)).Select(l => l[(l.IndexOf("replica=", StringComparison.Ordinal))..]),
            Is.SupersetOf(new[] { $"replica=\"{TestPipeline.Named(backup)}\"}} 0", $"replica=\"{TestPipeline.Named(unmounted)}\"}} 1" }));
        Assert.That(Value("xtelemdb_replica_origin_backlog_bytes", $"replica=\"{TestPipeline.Named(unmounted)}\""), Is.EqualTo(100_000));
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.That(Value("xtelemdb_watcher_last_poll_timestamp_seconds"), Is.InRange(now - 60, now + 1), "the start-up scan finished within the minute");
        Assert.That(Value("xtelemdb_watcher_poll_interval_seconds"), Is.EqualTo(60));
        Assert.That(Value("xtelemdb_inventory_backlog_counted_timestamp_seconds"), Is.InRange(now - 60, now + 1));
    }

    const string RefusedResyncs = Queues.ResyncRequested + "_error";

    static string ErrorQueue(string replica) => Queues.Replicate(TestPipeline.Host, TestPipeline.Named(replica)) + "_error";

    /// <summary>The alerts the failures call for are pending or firing, and none of those for healthy services or the replica that took its copies.</summary>
    static async Task AssertAlertsAsync(PrometheusServer prometheus, string backup, string unmounted, string full)
    {
        var alerts = await Eventually.Get(async () => (await prometheus.GetAsync("alerts"))["alerts"]!.AsArray(),
            a => new[]
            {
                Alerted(a!, "XtelemdbReplicaUnavailable", "replica", TestPipeline.Named(unmounted)),
                Alerted(a!, "XtelemdbCopyRequestsFailed", "queue", ErrorQueue(unmounted)),
                Alerted(a!, "XtelemdbCopyRequestsFailed", "queue", ErrorQueue(full)),
                Alerted(a!, "XtelemdbMessagesFailed", "queue", RefusedResyncs),
                Alerted(a!, "XtelemdbReplicaBehind", "replica", TestPipeline.Named(unmounted)),
                Alerted(a!, "XtelemdbReplicaFarBehind", "replica", TestPipeline.Named(unmounted)),
                Alerted(a!, "XtelemdbReplicaFarBehind", "replica", TestPipeline.Named(full)),
                Alerted(a!, "XtelemdbReplicaFailing", "replica", TestPipeline.Named(full)),
            }.All(found => found),
            Timeout, "the alerts of the unmounted and the full replica, pending or firing");
        TestContext.Progress.WriteLine("Alerts:\n" + string.Join("\n", alerts.Select(a => $"{a!["state"]} {a["labels"]!.ToJsonString()}")));
        Assert.That(alerts.Where(a => a!["labels"]!["alertname"]!.GetValue<string>() == "XtelemdbReplicaFailing").Select(a => (a!["labels"]!["replica"]!.GetValue<string>(), a["labels"]!["reason"]!.GetValue<string>())).Distinct(),
            Is.EqualTo(new[] { (TestPipeline.Named(full), "full") }), "the unmounted replica's failures (unavailable) are XtelemdbReplicaUnavailable's");
        Assert.That(alerts.Select(a => a!["labels"]!["replica"]?.GetValue<string>()), Has.None.EqualTo(TestPipeline.Named(backup)), "the replica that took its copies");
        Assert.That(alerts.Select(a => a!["labels"]!["alertname"]!.GetValue<string>()), Has.None.AnyOf("XtelemdbWatcherDown", "XtelemdbWatcherNotPolling",
            "XtelemdbWatcherFirstScanNotDone", "XtelemdbServiceDown", "XtelemdbBrokerMetricsDown", "XtelemdbBacklogNotCounted"));
        Assert.That(alerts.Where(a => a!["labels"]!["alertname"]!.GetValue<string>() is "XtelemdbCopyRequestsFailed" or "XtelemdbMessagesFailed").Select(a => a!["state"]!.GetValue<string>()),
            Has.All.EqualTo("firing"), "at once");
    }

    static bool Alerted(JsonArray alerts, string name, string label, string value) =>
        alerts.Any(a => a!["labels"]!["alertname"]!.GetValue<string>() == name && a["labels"]![label]?.GetValue<string>() == value);

    /// <summary>
    /// Every dashboard query, and every metric selector of every rule, returns series; the labels a
    /// rule groups by, matches on or names in its annotations are on them. Rates need two scrapes:
    /// asked again until all answer or the time is up, then every query without data is named.
    /// </summary>
    static async Task AssertEveryQueryFindsDataAsync(PrometheusServer prometheus)
    {
        var panels = MonitoringFiles.PanelQueries().ToArray();
        var rules = MonitoringFiles.AlertRules().ToArray();
        Assert.That(rules.Select(r => r.Name), Does.Contain("XtelemdbReplicaBehind"), "the rules were read");
        var checks = panels.Select(p => (What: p.Panel, Query: p.Expression, p.Labels))
            .Concat(rules.SelectMany(r => r.Selectors.Select(s => (What: $"rule {r.Name}", Query: s, r.Labels))))
            .ToList();

        var labelsSeen = new Dictionary<string, HashSet<string>>();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            foreach (var check in checks.ToArray())
            {
                var series = await prometheus.QueryAsync(check.Query);
                if (series.Count == 0)
                    continue;
                if (!labelsSeen.TryGetValue(check.What, out var seen))
                    labelsSeen[check.What] = seen = [];
                seen.UnionWith(series.SelectMany(s => s!["metric"]!.AsObject().Select(l => l.Key)));
                checks.Remove(check);
            }
            if (checks.Count == 0 || deadline.Elapsed > Timeout)
                break;
            await Task.Delay(500);
        }
        Assert.That(checks.Select(c => $"{c.What}: {c.Query}"), Is.Empty, "queries that found no data: a metric or label the services do not serve");

        var labelsMissing = panels.Select(p => (p.Panel, p.Labels)).Concat(rules.Select(r => (Panel: $"rule {r.Name}", r.Labels)))
            .SelectMany(q => q.Labels.Where(l => !labelsSeen[q.Panel].Contains(l)).Select(l => $"{q.Panel}: {l}"));
        Assert.That(labelsMissing, Is.Empty, "labels a rule uses (or a variable lists) that none of its series carries");

        // The check is not blind: a name off by a suffix finds nothing.
        Assert.That(await prometheus.QueryAsync("xtelemdb_replica_oldest_behind_age"), Is.Empty);
    }

    /// <summary>Every rule was evaluated on the real series without an error (a many-to-many match, say).</summary>
    static async Task AssertRulesEvaluateAsync(PrometheusServer prometheus)
    {
        var rules = await Eventually.Get(
            async () => (await prometheus.GetAsync("rules"))["groups"]!.AsArray().SelectMany(g => g!["rules"]!.AsArray()).ToArray(),
            r => r!.Length > 0 && r.All(rule => rule!["health"]!.GetValue<string>() != "unknown"), Timeout, "every rule evaluated");
        Assert.That(rules.Select(r => r!["name"]!.GetValue<string>()), Is.EquivalentTo(MonitoringFiles.AlertRules().Select(r => r.Name)));
        Assert.That(rules.Where(r => r!["health"]!.GetValue<string>() != "ok").Select(r => $"{r!["name"]}: {r["lastError"]}"), Is.Empty);
    }

    /// <summary>deploy/prometheus/prometheus.yml with this test's targets, RabbitMQ's restricted to its virtual host, scraping every second.</summary>
    string PrometheusConfig(string metrics, string rabbitExporter)
    {
        var config = new DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(File.ReadAllText(MonitoringFiles.Deploy("prometheus/prometheus.yml")));
        config["global"] = new Dictionary<string, object> { ["scrape_interval"] = "1s", ["evaluation_interval"] = "1s" };
        config["rule_files"] = new[] { MonitoringFiles.AlertsFile };
        var jobs = ((List<object>)config["scrape_configs"]).Cast<Dictionary<object, object>>().ToArray();
        Assert.That(jobs.Select(j => (string)j["job_name"]), Is.EquivalentTo(Jobs));
        foreach (var job in jobs)
        {
            var rabbit = (string)job["job_name"] == "rabbitmq";
            job["static_configs"] = new[] { new Dictionary<string, object> { ["targets"] = new[] { rabbit ? rabbitExporter : metrics } } };
            if (rabbit)
                ((Dictionary<object, object>)job["params"])["vhost"] = new[] { pipeline.Name };
        }
        return new SerializerBuilder().Build().Serialize(config);
    }

    static async Task AssertRabbitExporterAsync(HttpClient http, string exporter)
    {
        try
        {
            await http.GetStringAsync($"http://{exporter}/metrics/detailed?family=queue_coarse_metrics");
        }
        catch (HttpRequestException e)
        {
            Assert.Fail($"RabbitMQ's Prometheus exporter does not answer at http://{exporter}/metrics ({e.Message}): "
                + "enable it with 'rabbitmq-plugins enable rabbitmq_prometheus' (scripts/services does)");
        }
    }

    static (int ExitCode, string Output) Promtool(string[] arguments)
    {
        var start = new ProcessStartInfo("promtool")
        {
            WorkingDirectory = MonitoringFiles.Deploy("prometheus"),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"cannot run promtool ({e.Message}): install Debian's package prometheus (scripts/services does)");
            throw;
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            return (process.ExitCode, stdout.Result + stderr.Result);
        }
    }
}
