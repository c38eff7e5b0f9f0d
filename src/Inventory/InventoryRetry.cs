using MassTransit;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// A database or broker restart is retried with backoff (about a minute in all); a message naming
/// something unknown is not, and goes straight to the error queue.
/// </summary>
static class InventoryRetry
{
    public static void Configure(IRetryConfigurator retry)
    {
        retry.Exponential(8, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(500));
        retry.Ignore<UnknownRecordException>();
    }
}
