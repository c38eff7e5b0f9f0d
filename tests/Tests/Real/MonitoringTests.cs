using System.Net;
using System.Text.Json;
using Dapper;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Storage;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>/health, the health command and the log formats, with real faults.</summary>
public sealed class MonitoringTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    async Task SetConnectionsAllowedAsync(bool allowed)
    {
        await using var admin = new NpgsqlConnection(TestServices.PostgresAdmin);
        await admin.ExecuteAsync($"alter database {pipeline.Name} allow_connections {allowed}");
        if (!allowed)
            await admin.ExecuteAsync("select pg_terminate_backend(pid) from pg_stat_activity where datname = @Name", new { pipeline.Name });
    }

    [Test]
    public async Task When_the_database_refuses_connections_Should_answer_503_naming_it_then_recover()
    {
        var listen = new IPEndPoint(IPAddress.Loopback, Ports.FreeLoopback());
        var settings = pipeline.Configure([pipeline.Backup()]);
        settings = settings with { Monitoring = settings.Monitoring with { Listen = listen } };
        await pipeline.StartAsync(settings, PipelineServices.Inventory | PipelineServices.Replicator);
        var (exit, output) = await pipeline.RunAsync("health", listen.ToString());
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("\"Healthy\""));
        // Each process says which service it is and where it runs, as OpenTelemetry's resource (Prometheus: target_info).
        using (var http = new HttpClient())
        {
            var metrics = await http.GetStringAsync($"http://{listen}/metrics");
            var target = metrics.Split('\n').Single(l => l.StartsWith("target_info{", StringComparison.Ordinal));
            Assert.That(target, Does.Contain("service_name=\"xtelemdb-inventory-replicator\"").And.Contain($"service_instance_id=\"{TestPipeline.Host}:{listen.Port}\""));
        }

        await SetConnectionsAllowedAsync(false);
        try
        {
            using var http = new HttpClient();
            using var response = await http.GetAsync($"http://{listen}/health");
            var body = await response.Content.ReadAsStringAsync();
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), body);
            using var health = JsonDocument.Parse(body);
            var database = health.RootElement.GetProperty("checks").GetProperty("database");
            Assert.That(database.GetProperty("status").GetString(), Is.EqualTo("Unhealthy"));
            Assert.That(database.GetProperty("description").GetString(), Does.Contain(pipeline.Name));
            Assert.That(health.RootElement.GetProperty("checks").GetProperty("masstransit-bus").GetProperty("status").GetString(), Is.EqualTo("Healthy"));

            (exit, output) = await pipeline.RunAsync("health", listen.ToString());
            Assert.That(exit, Is.EqualTo(1), output);
        }
        finally
        {
            await SetConnectionsAllowedAsync(true);
        }
        await Eventually.True(async () => (await pipeline.RunAsync("health", listen.ToString())).ExitCode == 0, Timeout, "healthy again");
    }

    [Test]
    public async Task When_nothing_listens_Should_the_health_command_name_the_address_and_exit_1()
    {
        pipeline.Configure([]);
        var nobody = new IPEndPoint(IPAddress.Loopback, Ports.FreeLoopback());
        var (exit, output) = await pipeline.RunAsync("health", nobody.ToString());
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(output, Does.Contain($"http://{nobody}/health"));
    }

    [TestCase("Host=127.0.0.1;Port=1", "127.0.0.1:1")]
    [TestCase("Host=127.0.0.1:1,127.0.0.1;Port=2;Target Session Attributes=primary", "127.0.0.1:1,127.0.0.1:2")]
    public async Task When_the_database_is_not_there_Should_the_check_say_which_database_and_servers(string servers, string named)
    {
        await using var nowhere = NpgsqlDataSource.Create($"{servers};Database=xtelem;Username=xtelem;Timeout=3");
        var result = await new DatabaseHealthCheck(nowhere).CheckHealthAsync(new());
        Assert.That(result.Status, Is.EqualTo(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy));
        Assert.That(result.Description, Does.StartWith($"database xtelem on {named}: "));
    }

    [Test]
    public async Task When_log_format_is_json_Should_print_one_json_object_per_line()
    {
        pipeline.Configure([pipeline.Backup()]);
        File.AppendAllText(pipeline.ConfigPath, "[monitoring]\nlog_format = \"json\"\n");
        var watcher = pipeline.StartProcess("run", "Inventory", "Watcher");
        await Eventually.True(() => watcher.Output.Contains("Initial scan", StringComparison.Ordinal), Timeout, "the watcher's first scan logged");
        var lines = watcher.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.GreaterThanOrEqualTo(3));
        foreach (var line in lines)
        {
            using var entry = JsonDocument.Parse(line);
            Assert.That(entry.RootElement.GetProperty("Timestamp").GetString(), Does.EndWith("Z"), line);
            Assert.That(entry.RootElement.GetProperty("LogLevel").GetString(), Is.Not.Empty, line);
            Assert.That(entry.RootElement.GetProperty("Category").GetString(), Does.StartWith("Xtelemdb.").Or.StartWith("Microsoft."), line);
        }
        var scan = lines.Select(l => JsonDocument.Parse(l).RootElement).First(e => e.GetProperty("Message").GetString()!.Contains("Initial scan"));
        Assert.That(scan.GetProperty("State").GetProperty("Roots").GetString(), Is.EqualTo(pipeline.Data), "structured: the values are fields of their own");
    }
}
