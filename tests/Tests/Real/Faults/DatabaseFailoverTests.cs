using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// The primary of a primary/standby pair SIGKILLed while files flow, the standby promoted: the
/// services, given both hosts in one connection string, follow it without a restart.
/// </summary>
public sealed class DatabaseFailoverTests : FaultTest
{
    const int FileCount = 3_000;

    /// <param name="hostRecheckSeconds">Npgsql's Host Recheck Seconds, which bounds the switch: its default (10), or less.</param>
    [TestCase(null)]
    [TestCase(2)]
    public async Task When_the_primary_is_killed_and_the_standby_promoted_while_files_flow_Should_follow_it_and_lose_nothing(int? hostRecheckSeconds)
    {
        await using var pair = new OwnDatabasePair(Path.Combine(pipeline.Root, "postgres"));
        await pair.StartAsync();
        await StandbyIsUnhealthyAsync(pair.Standby);
        var backup = pipeline.Backup();
        var connection = pair.Connection + (hostRecheckSeconds is { } seconds ? $";Host Recheck Seconds={seconds}" : "");
        pipeline.Configure([backup], pollInterval: "10s", database: connection);
        var listen = $"127.0.0.1:{Ports.FreeLoopback()}";
        var service = pipeline.StartProcess("sync", "continuous=true", "--listen", listen);
        await HealthNamesAsync(listen, pair.Primary, "the primary");

        Task<(TimeSpan Recording, TimeSpan Health)>? failover = null;
        var files = await WriteFilesAsync(pipeline.Data, FileCount, TimeSpan.FromMilliseconds(50), async i =>
        {
            if (i == FileCount / 3)
            {
                // "While files flow": copies are being recorded on the primary when it dies.
                await Eventually.True(async () => await pair.Primary.ScalarAsync<long>("select count(*) from file_replicas") > 0,
                    ConvergeTimeout, "the first copies recorded on the primary");
                failover = FailOverAsync(pair, listen);
            }
        });
        var (recording, health) = await failover!;

        var audited = await AuditAsync(pair.Standby.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count));
        Assert.That(service.Process.HasExited, Is.False, "the service carried on without a restart");
        var errorQueues = (await pipeline.Management.QueuesAsync(pipeline.Name))
            .Where(q => q["name"]!.GetValue<string>().EndsWith("_error", StringComparison.Ordinal) && q["messages"]?.GetValue<long>() > 0)
            .Select(q => q["name"]!.GetValue<string>());
        Assert.That(errorQueues, Is.Empty, "nothing faulted for good during the switch");
        await HealthNamesAsync(listen, pair.Standby, "the promoted standby");
        Record($"database primary SIGKILL, standby promoted (Host Recheck Seconds {hostRecheckSeconds ?? 10})", audited,
            $"1 primary kill; copies recorded again {recording.TotalSeconds:0.0} s after the promotion, /health named the new primary after {health.TotalSeconds:0.0} s",
            (long)await CopiesAsync(listen), files.Count);
    }

    [Test]
    public async Task When_the_synchronous_standby_is_lost_Should_health_say_that_every_write_waits()
    {
        await using var pair = new OwnDatabasePair(Path.Combine(pipeline.Root, "postgres"));
        await pair.StartAsync();
        await using var dataSource = Npgsql.NpgsqlDataSource.Create(pair.Connection);
        var check = new Storage.DatabaseHealthCheck(dataSource);
        Assert.That((await check.CheckHealthAsync(new())).Status, Is.EqualTo(HealthStatus.Healthy), "both servers up");

        await pair.Standby.KillAsync();
        HealthCheckResult result = default;
        await Eventually.True(async () => (result = await check.CheckHealthAsync(new())).Status == HealthStatus.Unhealthy, TimeSpan.FromSeconds(30),
            "/health's database entry unhealthy once the primary's walsender has gone");
        Assert.That(result.Description, Is.EqualTo($"database postgres on 127.0.0.1:{pair.Primary.Port}, the primary, waits for a synchronous standby "
            + "(synchronous_standby_names = '*') that is not connected (streaming: none): every write waits until it is, or the setting is emptied"));
    }

    /// <summary>Kills the primary, promotes the standby, and times how long the service takes to record copies there and to say so in /health.</summary>
    static async Task<(TimeSpan Recording, TimeSpan Health)> FailOverAsync(OwnDatabasePair pair, string listen)
    {
        await pair.Primary.KillAsync();
        await pair.Standby.PromoteAsync();
        var promoted = Stopwatch.StartNew();
        var before = await pair.Standby.ScalarAsync<long>("select count(*) from file_replicas");
        await Eventually.True(async () => await pair.Standby.ScalarAsync<long>("select count(*) from file_replicas") > before,
            TimeSpan.FromMinutes(2), "copies recorded on the promoted standby");
        var recording = promoted.Elapsed;
        await HealthNamesAsync(listen, pair.Standby, "the promoted standby");
        var health = promoted.Elapsed;
        TestContext.Progress.WriteLine($"failover: copies recorded again {recording.TotalSeconds:0.0} s after the promotion; /health named the new primary after {health.TotalSeconds:0.0} s");
        return (recording, health);
    }

    /// <summary>A connection string that names only the standby: /health says the services cannot write there.</summary>
    static async Task StandbyIsUnhealthyAsync(OwnDatabase standby)
    {
        await using var dataSource = Npgsql.NpgsqlDataSource.Create(standby.Connection);
        var result = await new Storage.DatabaseHealthCheck(dataSource).CheckHealthAsync(new());
        Assert.That(result.Status, Is.EqualTo(HealthStatus.Unhealthy));
        Assert.That(result.Description, Is.EqualTo($"database postgres on 127.0.0.1:{standby.Port} is a standby (in recovery), where nothing can be written"));
    }

    /// <summary>Waits until /health's database entry names this server as the primary it is connected to.</summary>
    static Task HealthNamesAsync(string listen, OwnDatabase server, string what) =>
        Eventually.True(async () =>
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var response = await http.GetAsync($"http://{listen}/health");
            using var health = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var database = health.RootElement.GetProperty("checks").GetProperty("database");
            return database.GetProperty("status").GetString() == "Healthy"
                && database.GetProperty("server").GetString() == $"127.0.0.1:{server.Port}"
                && database.GetProperty("role").GetString() == "primary"
                && database.GetProperty("description").GetString()!.Contains($"127.0.0.1:{server.Port}, the primary", StringComparison.Ordinal);
        }, TimeSpan.FromMinutes(2), $"/health naming {what} (127.0.0.1:{server.Port}) as the database's primary");
}
