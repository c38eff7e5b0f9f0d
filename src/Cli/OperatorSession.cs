using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Cli;

/// <summary>What an operator command talks to: the inventory database and, to announce work, the bus.</summary>
public sealed class OperatorSession : IAsyncDisposable
{
    readonly IHost host;

    OperatorSession(IHost host) => this.host = host;

    public InventoryStore Store => host.Services.GetRequiredService<InventoryStore>();
    public IBus Bus => host.Services.GetRequiredService<IBus>();
    public XtelemdbSettings Settings => host.Services.GetRequiredService<XtelemdbSettings>();
    public FixityStore Fixity => host.Services.GetRequiredService<FixityStore>();
    public ReplicaNeeds ReplicaNeeds => host.Services.GetRequiredService<ReplicaNeeds>();
    public PurgeableStore Purgeable => new(host.Services.GetRequiredService<Npgsql.NpgsqlDataSource>());

    public static async Task<OperatorSession> StartAsync(XtelemdbSettings settings, CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddSimpleConsole(console => console.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(settings);
        builder.Services.AddInventoryStore(settings.Database);
        builder.Services.AddPipelineBus(settings);
        var host = builder.Build();
        InventoryDatabase.Migrate(settings.Database, settings.Host);
        await host.StartAsync(cancellationToken);
        return new OperatorSession(host);
    }

    public async ValueTask DisposeAsync()
    {
        await host.StopAsync();
        host.Dispose();
    }
}
