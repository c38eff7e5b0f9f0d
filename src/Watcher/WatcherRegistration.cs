using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Watcher;

public static class WatcherRegistration
{
    /// <summary>The watcher of this host's roots. It only publishes, so it adds nothing to the bus.</summary>
    public static IServiceCollection AddWatcher(this IServiceCollection services, XtelemdbSettings settings)
    {
        services.TryAddSingleton(settings);
        services.AddSingleton<FileWatchService>();
        return services.AddHostedService(provider => provider.GetRequiredService<FileWatchService>());
    }
}
