using MassTransit;
using Microsoft.Extensions.Logging;
using Npgsql;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;
using Xtelemdb.Storage;

namespace Xtelemdb.Inventory;

/// <summary>
/// What the database refused of a list whose other files are recorded. A file refused for what
/// its row holds (<see cref="DatabaseErrors.RefusesTheRow"/>) can never be recorded as it is: it is
/// logged as an error naming it, counted, and sent to its host's watcher, which lists it for verify
/// and does not report it again until it changes; the list is done. A file refused for another
/// reason (a trigger, a permission) may be let in once that is mended: the list fails naming it,
/// is retried for [inventory] retry_for, then faulted, and its watcher reports its files again.
/// </summary>
public sealed class RefusedObservations(ILogger<RefusedObservations> logger)
{
    /// <summary>Files named in a failed list's error; an error that refuses a whole list of 250 says how many more.</summary>
    const int Named = 10;

    public async Task ReportAsync(IPublishEndpoint publisher, int listed, IReadOnlyList<(FileChanged Change, PostgresException Error)> refused,
        CancellationToken cancellationToken)
    {
        var forGood = refused.Where(r => DatabaseErrors.RefusesTheRow(r.Error)).ToArray();
        foreach (var (change, error) in forGood)
        {
            if (change.Deleted)
                logger.LogWarning("The deletion of {Host}:{Path} is not recorded: the database refuses its row ({Reason})", change.Host, change.Path, Reason(error));
            else
                logger.LogError("{Host}:{Path} is not recorded, so not backed up: the database refuses its row ({Reason})", change.Host, change.Path, Reason(error));
            PipelineMetrics.OriginsRefused.Add(1, new KeyValuePair<string, object?>("sqlstate", error.SqlState));
        }
        // A deletion of a file never recorded leaves nothing to list.
        foreach (var host in forGood.Where(r => !r.Change.Deleted).GroupBy(r => r.Change.Host))
        {
            var message = new FilesRefused
            {
                Host = host.Key,
                Files = [.. host.Select(r => new SkippedFile(r.Change.Path, $"{FilesRefused.Reason} ({Reason(r.Error)})"))],
            };
            // Bounded, as every send of the pipeline: a confirm the client never delivers would hold the list forever.
            await ConfirmedSend.RunAsync(token => publisher.Publish(message, token), "FilesRefused", cancellationToken);
        }

        var others = refused.Where(r => !DatabaseErrors.RefusesTheRow(r.Error)).ToArray();
        if (others.Length > 0)
        {
            var named = string.Join("; ", others.Take(Named).Select(r => $"{r.Change.Host}:{r.Change.Path} ({Reason(r.Error)})"));
            var more = others.Length > Named ? $"; and {others.Length - Named} more" : "";
            var rest = others.Length == listed ? "every one" : $"{others.Length} of {listed} observations, the others are recorded";
            throw new ObservationsRefusedException($"The database refused {rest}: {named}{more}");
        }
    }

    /// <summary>The server's words, without Npgsql's note that it left out the detail (which may hold a row's values).</summary>
    static string Reason(PostgresException error) => $"{error.SqlState}: {error.MessageText}";
}

/// <summary>Some observations of a list were refused for a reason that may be mended: the list is retried, then faulted.</summary>
public sealed class ObservationsRefusedException(string message) : Exception(message);
