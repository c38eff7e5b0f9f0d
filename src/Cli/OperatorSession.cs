using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli;

/// <summary>
/// What an operator command talks to: the inventory database and, for a command that announces
/// work, the bus. A command that sends nothing starts no bus: starting and stopping MassTransit
/// cost most of a second, and reading the inventory needs no broker.
/// </summary>
public sealed class OperatorSession : IAsyncDisposable
{
    readonly NpgsqlDataSource dataSource;
    readonly IHost? busHost;

    OperatorSession(XtelemdbSettings settings, NpgsqlDataSource dataSource, IHost? busHost)
    {
        Settings = settings;
        this.dataSource = dataSource;
        this.busHost = busHost;
        Store = new InventoryStore(dataSource);
        Fixity = new FixityStore(dataSource);
        Purgeable = new PurgeableStore(dataSource);
    }

    public XtelemdbSettings Settings { get; }
    public InventoryStore Store { get; }
    public FixityStore Fixity { get; }
    public PurgeableStore Purgeable { get; }
    public IBus Bus => BusService<IBus>();
    public ReplicaNeeds ReplicaNeeds => BusService<ReplicaNeeds>();

    /// <summary>The database alone, its schema migrated if it is behind: for a command that sends no message.</summary>
    public static Task<OperatorSession> StartAsync(XtelemdbSettings settings, CancellationToken cancellationToken) =>
        StartAsync(settings, withBus: false, cancellationToken);

    /// <summary>The database and a running bus: for a command that publishes or sends.</summary>
    public static Task<OperatorSession> StartWithBusAsync(XtelemdbSettings settings, CancellationToken cancellationToken) =>
        StartAsync(settings, withBus: true, cancellationToken);

    static async Task<OperatorSession> StartAsync(XtelemdbSettings settings, bool withBus, CancellationToken cancellationToken)
    {
        var dataSource = InventoryDatabase.CreateDataSource(settings.Database);
        await InventoryDatabase.MigrateIfBehindAsync(dataSource, settings.Database, settings.Host, cancellationToken);
        return new OperatorSession(settings, dataSource, withBus ? await StartBusAsync(settings, cancellationToken) : null);
    }

    static async Task<IHost> StartBusAsync(XtelemdbSettings settings, CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddSimpleConsole(console => console.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        // On standard error: standard output holds the command's results alone, which a script reads (--json).
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.AddPipelineBus(settings);
        var host = builder.Build();
        await host.StartAsync(cancellationToken);
        return host;
    }

    T BusService<T>() where T : notnull => busHost is null
        ? throw new InvalidOperationException($"this session has no bus, so it cannot give a {typeof(T).Name}: a command that sends messages starts its session with {nameof(StartWithBusAsync)}")
        : busHost.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        if (busHost is not null)
        {
            await busHost.StopAsync();
            busHost.Dispose();
        }
        await dataSource.DisposeAsync();
    }
}
