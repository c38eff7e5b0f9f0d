using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// What the inventory's consumers retry besides a database away (which DatabaseRetry waits out for
/// minutes): a broker hiccup or a lock is retried with backoff, for about [inventory] retry_for in
/// all (a minute by default); a message naming something unknown is not, and goes straight to the
/// error queue.
/// </summary>
static class InventoryRetry
{
    /// <summary>The retry of the settings the consumer's bus was registered with.</summary>
    public static Action<IRetryConfigurator> Of(IRegistrationContext context)
    {
        var retryFor = context.GetRequiredService<XtelemdbSettings>().Inventory.RetryFor;
        return retry => Configure(retry, retryFor);
    }

    /// <summary>Eight retries, growing from 0.7 s to 20 s apart by default; a shorter or longer retry_for scales every wait alike.</summary>
    static void Configure(IRetryConfigurator retry, TimeSpan retryFor)
    {
        var scale = retryFor / InventorySettings.DefaultRetryFor;
        retry.Exponential(8, TimeSpan.FromMilliseconds(200) * scale, TimeSpan.FromSeconds(20) * scale, TimeSpan.FromMilliseconds(500) * scale);
        retry.Ignore<UnknownRecordException>();
    }
}
