using MassTransit;

namespace Xtelemdb.Watcher;

/// <summary>
/// Files of this host the inventory's database refuses for good: the watcher lists them with what
/// it does not back up (verify names them), rather than report them again to be refused again.
/// </summary>
public sealed class ListRefusedConsumer(FileWatchService watcher) : IConsumer<FilesRefused>
{
    public Task Consume(ConsumeContext<FilesRefused> context)
    {
        watcher.Refused(context.Message);
        return Task.CompletedTask;
    }
}
