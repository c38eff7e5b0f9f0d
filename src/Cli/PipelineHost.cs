using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Inventory;
using Xtelemdb.Replicator;
using Xtelemdb.Watcher;

namespace Xtelemdb.Cli;

/// <summary>The services a process runs: any of them alone, or all three (the all-in-one mode).</summary>
[Flags]
public enum PipelineServices
{
    Watcher = 1,
    Inventory = 2,
    Replicator = 4,
    All = Watcher | Inventory | Replicator,
}

public static class PipelineHost
{
    /// <summary>
    /// Builds the host that production runs and the tests start. With [monitoring] listen set, it
    /// also serves /health (broker and database reachability) and /metrics (Prometheus) there.
    /// </summary>
    public static IHost Create(XtelemdbSettings settings, PipelineServices services, Action<IServiceCollection>? configure = null)
    {
        if (settings.Monitoring.Listen is not { } listen)
        {
            var plain = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            AddServices(plain.Services, plain.Logging, settings, services, configure);
            return plain.Build();
        }

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.Listen(listen));
        builder.Services.AddRoutingCore();
        AddServices(builder.Services, builder.Logging, settings, services, configure);
        // Metrics are collected only where they are served: a listener costs time on every message.
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName(services), "xtelemdb", serviceInstanceId: $"{settings.Host}:{listen.Port}"))
            .WithMetrics(metrics => metrics
            .AddMeter(PipelineMetrics.MeterName, "MassTransit")
            .AddRuntimeInstrumentation()
            .AddPrometheusExporter());

        var app = builder.Build();
        app.MapHealthChecks("/health", new HealthCheckOptions { ResponseWriter = WriteHealthAsync });
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }

    /// <summary>"xtelemdb-inventory", "xtelemdb-watcher-replicator"; the all-in-one mode is "xtelemdb".</summary>
    public static string ServiceName(PipelineServices services) => services == PipelineServices.All
        ? "xtelemdb"
        : "xtelemdb-" + string.Join("-", Enum.GetValues<PipelineServices>().Where(s => s != PipelineServices.All && services.HasFlag(s)).Select(s => s.ToString().ToLowerInvariant()));

    static void AddServices(IServiceCollection services, ILoggingBuilder logging, XtelemdbSettings settings, PipelineServices parts, Action<IServiceCollection>? configure)
    {
        ConfigureLogging(logging, settings.Monitoring.LogFormat);
        if (parts.HasFlag(PipelineServices.Inventory))
            services.AddInventory(settings);
        if (parts.HasFlag(PipelineServices.Replicator))
            services.AddReplicator(settings);
        if (parts.HasFlag(PipelineServices.Watcher))
            services.AddWatcher(settings);
        services.AddPipelineBus(settings);
        // MassTransit adds a health check of its bus to these; the inventory store adds the database's.
        services.AddHealthChecks();
        configure?.Invoke(services);
    }

    /// <summary>One line per event: readable text, or JSON objects for a log shipper.</summary>
    static void ConfigureLogging(ILoggingBuilder logging, LogFormat format)
    {
        if (format == LogFormat.Json)
        {
            logging.AddJsonConsole(json =>
            {
                json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                json.UseUtcTimestamp = true;
            });
        }
        else
        {
            logging.AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
                console.UseUtcTimestamp = true;
            });
        }
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("MassTransit", LogLevel.Warning);
        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
    }

    /// <summary>{"status": "Healthy", "checks": {"database": {"status": …, "description": …}, …}}; 503 unless healthy.</summary>
    static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new
            {
                status = e.Value.Status.ToString(),
                description = e.Value.Description ?? e.Value.Exception?.Message,
                // The database's host:port and role: what a script watching a failover reads.
                server = e.Value.Data.GetValueOrDefault("server"),
                role = e.Value.Data.GetValueOrDefault("role"),
            }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, new JsonSerializerOptions { WriteIndented = true }));
    }
}
