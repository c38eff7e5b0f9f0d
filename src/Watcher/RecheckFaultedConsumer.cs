using MassTransit;

namespace Xtelemdb.Watcher;

/// <summary>
/// A list of observations the inventory could not record goes to file-changed_error, and
/// MassTransit publishes its Fault. The watcher that sent it reports those files again: nobody
/// else would ask for them until they change, as the database does not know them.
/// </summary>
public sealed class RecheckFaultedConsumer(FileWatchService watcher) : IConsumer<Fault<FilesChanged>>
{
    public Task Consume(ConsumeContext<Fault<FilesChanged>> context)
    {
        watcher.Recheck(context.Message.Message.Files, context.Message.Exceptions.FirstOrDefault()?.Message ?? "no reason given");
        return Task.CompletedTask;
    }
}
