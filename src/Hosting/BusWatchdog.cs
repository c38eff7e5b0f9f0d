using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Xtelemdb.Hosting;

/// <summary>
/// Ends the process when the bus stays unhealthy, so that its service manager (compose's restart
/// policy, systemd's Restart=) starts it afresh. After a broker crash, RabbitMQ.Client 7.2 can
/// leave a reconnected bus whose receive endpoints never come back (rabbitmq-dotnet-client#1930):
/// the queues fill and nothing consumes them. A new process connects cleanly, and every consumer
/// is idempotent, so a restart loses nothing.
/// </summary>
public sealed class BusWatchdog(IBusControl bus, IHostApplicationLifetime lifetime, ILogger<BusWatchdog> logger) : BackgroundService
{
    public const int ExitCode = 3;
    static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    /// <summary>How long the bus may stay unhealthy: long enough to ride out a broker restart.</summary>
    public static TimeSpan Grace { get; set; } = TimeSpan.FromSeconds(60);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Delay(Timeout.Infinite, lifetime.ApplicationStarted).ContinueWith(_ => { }, TaskScheduler.Default);
        DateTime? unhealthySince = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var health = bus.CheckHealth();
            // A bus can call itself healthy while every send times out: both count.
            var (healthy, description) = (health.Status, ConfirmedSend.FailingSince) switch
            {
                (_, { } since) => (false, $"no send confirmed since {since:O}"),
                (BusHealthStatus.Healthy, null) => (true, health.Description),
                _ => (false, $"{health.Status}: {health.Description}"),
            };
            if (healthy)
            {
                if (unhealthySince is not null)
                    logger.LogInformation("The bus is healthy again");
                unhealthySince = null;
            }
            else if (unhealthySince is null)
            {
                unhealthySince = DateTime.UtcNow;
                logger.LogWarning("The bus is unwell ({Description}); waiting up to {Grace} for it to recover", description, Grace);
            }
            else if (DateTime.UtcNow - unhealthySince > Grace)
            {
                logger.LogCritical("The bus has been unwell for {Grace} ({Description}); exiting with code {Code} so that the service manager restarts this service",
                    Grace, description, ExitCode);
                Environment.ExitCode = ExitCode;
                lifetime.StopApplication();
                return;
            }
            await Task.Delay(Interval, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
