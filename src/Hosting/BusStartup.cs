using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Xtelemdb.Hosting;

/// <summary>
/// Holds the start-up until the bus runs, so that nothing is published before its queues are
/// declared and bound, but only for <see cref="BusWatchdog.Grace"/>: then it ends the process as
/// the bus watchdog does. MassTransit's own wait (WaitUntilStarted with a StartTimeout) can hang
/// for ever: a start cancelled by its timeout awaits the endpoints' readiness with no bound, and a
/// broker killed while the bus declared its topology left a process that neither started nor
/// exited. Here MassTransit starts in the background, retrying the broker until it answers.
/// </summary>
public sealed class BusStartup(IBusControl bus, IHostApplicationLifetime lifetime, ILogger<BusStartup> logger) : IHostedService
{
    static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + BusWatchdog.Grace;
        var health = bus.CheckHealth();
        while (health.Status != BusHealthStatus.Healthy)
        {
            if (DateTime.UtcNow > deadline)
            {
                logger.LogCritical("The bus has not started in {Grace} ({Status}: {Description}); exiting with code {Code} so that the service manager restarts this service",
                    BusWatchdog.Grace, health.Status, health.Description, BusWatchdog.ExitCode);
                Environment.ExitCode = BusWatchdog.ExitCode;
                // Stopped once started: stopping now would cancel the start of the services after this one, which would fail instead.
                lifetime.ApplicationStarted.Register(lifetime.StopApplication);
                return;
            }
            // Cancelled when the service is stopped while it starts: the host stops it as usual.
            await Task.Delay(Poll, cancellationToken);
            health = bus.CheckHealth();
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
