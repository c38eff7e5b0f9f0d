using MassTransit;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// What the inventory's consumers retry besides a database away (which DatabaseRetry waits out for
/// minutes): a broker hiccup or a lock is retried with backoff (about a minute in all); a message
/// naming something unknown is not, and goes straight to the error queue.
/// </summary>
static class InventoryRetry
{
    public static void Configure(IRetryConfigurator retry)
    {
        retry.Exponential(8, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(500));
        retry.Ignore<UnknownRecordException>();
    }
}
