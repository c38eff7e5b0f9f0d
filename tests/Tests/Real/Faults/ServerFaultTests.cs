using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>The broker, then the database, SIGKILLed and restarted while 5,000 files flow; the broker also while the service starts.</summary>
public sealed class ServerFaultTests : FaultTest
{
    const int FileCount = 5_000;
    static readonly TimeSpan BrokerDown = TimeSpan.FromSeconds(3);

    [Test]
    public async Task When_the_broker_is_killed_and_restarted_while_files_flow_Should_lose_nothing()
    {
        await using var broker = new OwnBroker(Path.Combine(pipeline.Root, "rabbitmq"));
        await broker.StartAsync();
        var (service, listen, backup) = StartSupervisedSync(broker);
        await using var _ = service;

        var copiesBefore = 0.0;
        var files = await WriteFilesAsync(pipeline.Data, FileCount, TimeSpan.FromMilliseconds(20), async i =>
        {
            if (i == FileCount / 3)
            {
                // "While files flow": the pipeline has copied, so the kill finds it up and working.
                await Eventually.True(async () => (copiesBefore = await CopiesAsync(listen)) > 0, ConvergeTimeout, "the first copies in /metrics");
                await RestartAsync(broker);
            }
        });

        var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count));
        Assert.That(service.ExitCodes, Is.All.EqualTo(Hosting.BusWatchdog.ExitCode), "the only exits are the watchdog's");
        Record("broker SIGKILL + restart", audited, $"1 broker kill, 3 s down; {service.Restarts} service restarts by the bus watchdog",
            (long)(copiesBefore + await CopiesAsync(listen)), files.Count);
    }

    [Test]
    public async Task When_the_broker_is_killed_while_the_service_starts_Should_lose_nothing()
    {
        await using var broker = new OwnBroker(Path.Combine(pipeline.Root, "rabbitmq"));
        await broker.StartAsync();
        var (service, listen, backup) = StartSupervisedSync(broker);
        await using var _ = service;

        var files = await WriteFilesAsync(pipeline.Data, FileCount / 5, TimeSpan.FromMilliseconds(20), async i =>
        {
            if (i == 0)
            {
                // The database is migrated before any part starts: the broker dies under the queue labels' and the bus's start.
                await Eventually.True(() => service.Output.Contains("Database migrated"), TimeSpan.FromMinutes(1), "the service's migration");
                Assert.That(service.Output, Does.Not.Contain("Application started"), "the service is still starting");
                await RestartAsync(broker);
            }
        });

        var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count));
        Assert.That(service.ExitCodes, Is.All.EqualTo(Hosting.BusWatchdog.ExitCode), "the only exits are the watchdog's");
        Record("broker SIGKILL during start-up", audited, $"1 broker kill, 3 s down; {service.Restarts} service restarts by the bus watchdog",
            (long)await CopiesAsync(listen), files.Count);
    }

    /// <summary>As deployed: "sync continuous=true" under a service manager, so that the bus watchdog's exit is a restart.</summary>
    (Supervisor Service, string Listen, string Backup) StartSupervisedSync(OwnBroker broker)
    {
        var backup = pipeline.Backup();
        // A short poll: what was in flight to a dead broker is found again by the next poll.
        pipeline.Configure([backup], pollInterval: "10s", broker: broker.Uri);
        var listen = $"127.0.0.1:{Ports.FreeLoopback()}";
        var service = new Supervisor("sync continuous=true", () => pipeline.StartProcess("sync", "continuous=true", "--listen", listen));
        return (service, listen, backup);
    }

    static async Task RestartAsync(OwnBroker broker)
    {
        await broker.KillAsync();
        await Task.Delay(BrokerDown);
        await broker.StartAsync();
    }

    [Test]
    public async Task When_the_database_is_killed_and_restarted_while_files_flow_Should_lose_nothing()
    {
        await using var database = new OwnDatabase(Path.Combine(pipeline.Root, "postgres"));
        await database.StartAsync();
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup], pollInterval: "10s", database: database.Connection);
        var host = await pipeline.StartAsync(settings, PipelineServices.All);

        var files = await WriteFilesAsync(pipeline.Data, FileCount, TimeSpan.FromMilliseconds(20), async i =>
        {
            if (i == FileCount / 3)
            {
                await database.KillAsync();
                await Task.Delay(TimeSpan.FromSeconds(3));
                await database.StartAsync();
            }
        });

        var audited = await AuditAsync(database.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count));
        Record("database SIGKILL + restart", audited, "1 postgres kill, 3 s down", host.Services.GetRequiredService<ReplicaCopier>().Copies, files.Count);
    }
}
