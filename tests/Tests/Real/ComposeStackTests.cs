using System.Diagnostics;
using System.Text.Json;
using Npgsql;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// compose.yaml proven without a Docker engine: each xtelemdb service it defines runs as a plain
/// process with the command, environment, mounts, start order and healthcheck the file gives it,
/// against this run's broker and database.
/// </summary>
public sealed class ComposeStackTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Test]
    public async Task When_compose_yaml_runs_as_processes_Should_carry_a_file_end_to_end_and_answer_health_and_metrics()
    {
        var root = Repository.Root();
        var backup = pipeline.Backup();
        var variables = ComposeFile.ReadEnvFile(Path.Combine(root, "deploy", "env.example"));
        variables["PGPASSWORD"] = Environment.GetEnvironmentVariable("PGPASSWORD")!;
        variables["XTELEMDB_BROKER_USER"] = Environment.GetEnvironmentVariable("XTELEMDB_BROKER_USER")!;
        variables["XTELEMDB_BROKER_PASSWORD"] = Environment.GetEnvironmentVariable("XTELEMDB_BROKER_PASSWORD")!;
        variables["XTELEMDB_DATA"] = pipeline.Data;
        variables["XTELEMDB_BACKUP"] = backup;
        var services = ComposeFile.Load(Path.Combine(root, "compose.yaml"), variables);
        var applications = services.Values.Where(s => s.Built).ToArray();
        Assert.That(applications.Select(s => s.Name), Is.EquivalentTo(new[] { "inventory", "watcher", "replicator" }));
        Assert.That(services["postgres"].HealthCheck, Is.Not.Empty);
        Assert.That(services["rabbitmq"].HealthCheck, Is.Not.Empty);
        // The error queues' "Move messages" needs the shovel plugins, in the container as in scripts/services.
        var plugins = services["rabbitmq"].Volumes.Single(v => v.Target == "/etc/rabbitmq/enabled_plugins").Source;
        Assert.That(File.ReadAllText(plugins).Trim(), Is.EqualTo("[rabbitmq_management,rabbitmq_prometheus,rabbitmq_shovel,rabbitmq_shovel_management]."));
        Assert.That(File.ReadAllText(Path.Combine(root, "scripts", "services")), Does.Contain("rabbitmq_shovel rabbitmq_shovel_management"));

        var listening = new Dictionary<string, string>();
        foreach (var service in StartOrder(applications))
        {
            foreach (var (dependency, condition) in service.DependsOn.Where(d => services[d.Key].Built && d.Value == "service_healthy"))
                await Eventually.True(() => HealthCheckPassesAsync(services[dependency]), Timeout, $"{dependency} healthy before {service.Name} starts");
            var arguments = service.Command.Select(a => Translate(service, a)).ToArray();
            listening[service.Name] = arguments[Array.IndexOf(arguments, "--listen") + 1];
            pipeline.StartCommandLine(service.Environment, arguments);
        }
        foreach (var service in applications)
            await Eventually.True(() => HealthCheckPassesAsync(service), Timeout, $"{service.Name} healthcheck");

        var file = Path.Combine(pipeline.Data, "telem", "compose.bintel");
        Files.Write(file, 200_000, seed: 5);
        var host = Hosting.Settings.SettingsLoader.Load(Path.Combine(pipeline.Root, "watcher.toml")).Host;
        await pipeline.ReplicatedAsync(backup, file, Timeout, host);
        Assert.That(File.ReadAllBytes(TestPipeline.TargetOf(backup, file, host)), Is.EqualTo(File.ReadAllBytes(file)));

        foreach (var service in applications)
        {
            using var health = JsonDocument.Parse(await Http.GetStringAsync($"http://{listening[service.Name]}/health"));
            Assert.That(health.RootElement.GetProperty("status").GetString(), Is.EqualTo("Healthy"), service.Name);
            var checks = health.RootElement.GetProperty("checks").EnumerateObject().Select(c => c.Name).ToArray();
            Assert.That(checks, Does.Contain("masstransit-bus"), service.Name);
            if (service.Name != "watcher")
                Assert.That(checks, Does.Contain("database"), service.Name);
        }
        await Eventually.True(async () => PrometheusText.Sum(await MetricsAsync(listening["watcher"]), "xtelemdb_watcher_changes_total", "source=\"live\"") >= 1,
            Timeout, "the watcher's metrics count the live change");
        await Eventually.True(async () => PrometheusText.Sum(await MetricsAsync(listening["inventory"]), "xtelemdb_inventory_origin_upserts_total", "") >= 1,
            Timeout, "the inventory's metrics count the upsert");
        // The copy is recorded before its consumer returns: MassTransit counts it a moment later.
        await Eventually.True(async () => PrometheusText.Sum(await MetricsAsync(listening["replicator"]), "messaging_masstransit_consume_ea_total", "consumer_type=\"CopyFileConsumer\"") >= 1,
            Timeout, "MassTransit's own instrumentation in the replicator's metrics");
        var replicator = await MetricsAsync(listening["replicator"]);
        Assert.That(PrometheusText.Sum(replicator, "xtelemdb_replicator_copies_total", "result=\"copied\""), Is.GreaterThanOrEqualTo(1));
        Assert.That(PrometheusText.Sum(replicator, "xtelemdb_replicator_copied_bytes_total", ""), Is.GreaterThanOrEqualTo(200_000));
        Assert.That(PrometheusText.Sum(replicator, "xtelemdb_replicator_copy_duration_seconds_count", ""), Is.GreaterThanOrEqualTo(1));
        // The backlog gauges are counted by the inventory; the replica is there, and in sync.
        await Eventually.True(async () => (await MetricsAsync(listening["inventory"])).Contains("xtelemdb_replica_backlog_files{"),
            Timeout, "the inventory's backlog gauges");
    }

    /// <summary>The compose file's paths and addresses, as this machine has them.</summary>
    string Translate(ComposeService service, string argument)
    {
        // The image's binary is the very one the tests built.
        if (argument.StartsWith("/app/", StringComparison.Ordinal))
            return Path.Combine(AppContext.BaseDirectory, argument["/app/".Length..]);
        // Tests bind to loopback only; in a container 0.0.0.0 is the container's own interfaces.
        if (argument.StartsWith("0.0.0.0:", StringComparison.Ordinal))
            return "127.0.0.1:" + argument["0.0.0.0:".Length..];
        if (argument.EndsWith(".toml", StringComparison.Ordinal))
            return TranslateSettings(service, argument);
        return argument;
    }

    /// <summary>
    /// The mounted TOML file with the mounts' container paths replaced by their sources, and the
    /// compose network's "postgres" and "rabbitmq" replaced by this test's database and virtual host.
    /// </summary>
    string TranslateSettings(ComposeService service, string containerPath)
    {
        var mount = service.Volumes.Single(v => v.Target == containerPath);
        var text = File.ReadAllText(mount.Source);
        foreach (var (source, target) in service.Volumes.Where(v => v.Target != containerPath))
            text = text.Replace($"\"{target}\"", $"\"{source}\"", StringComparison.Ordinal);
        var lines = text.Split('\n').Select(line =>
        {
            if (line.StartsWith("connection = ", StringComparison.Ordinal))
            {
                var local = new NpgsqlConnectionStringBuilder(pipeline.Connection);
                var composed = new NpgsqlConnectionStringBuilder(line["connection = ".Length..].Trim('"'));
                Assert.That(composed.Host, Is.EqualTo("postgres"), "the compose file's database is its postgres service");
                composed.Host = local.Host;
                composed.Port = local.Port;
                composed.Database = local.Database;
                return $"connection = \"{composed.ConnectionString}\"";
            }
            if (line.StartsWith("uri = ", StringComparison.Ordinal))
            {
                Assert.That(line, Does.Contain("//rabbitmq:"), "the compose file's broker is its rabbitmq service");
                return $"uri = \"amqp://{TestServices.Amqp.Host}:{TestServices.Amqp.Port}/{pipeline.Name}\"";
            }
            return line;
        });
        var path = Path.Combine(pipeline.Root, $"{service.Name}.toml");
        File.WriteAllLines(path, lines);
        return path;
    }

    async Task<bool> HealthCheckPassesAsync(ComposeService service)
    {
        Assert.That(service.HealthCheck, Is.Not.Empty, $"{service.Name} has a healthcheck");
        Assert.That(service.HealthCheck[0], Is.EqualTo("CMD"));
        var start = new ProcessStartInfo(Translate(service, service.HealthCheck[1])) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in service.HealthCheck.Skip(2))
            start.ArgumentList.Add(Translate(service, argument));
        using var check = Process.Start(start)!;
        var output = check.StandardOutput.ReadToEndAsync();
        var error = check.StandardError.ReadToEndAsync();
        await check.WaitForExitAsync();
        if (check.ExitCode != 0)
            TestContext.Progress.WriteLine($"{service.Name} healthcheck: exit {check.ExitCode}: {await output}{await error}");
        return check.ExitCode == 0;
    }

    /// <summary>Dependencies first, as compose starts them.</summary>
    static IEnumerable<ComposeService> StartOrder(IReadOnlyList<ComposeService> services)
    {
        var started = new HashSet<string>();
        var names = services.Select(s => s.Name).ToHashSet();
        while (started.Count < services.Count)
        {
            var next = services.First(s => !started.Contains(s.Name) && s.DependsOn.Keys.Where(names.Contains).All(started.Contains));
            started.Add(next.Name);
            yield return next;
        }
    }

    static Task<string> MetricsAsync(string address) => Http.GetStringAsync($"http://{address}/metrics");
}
