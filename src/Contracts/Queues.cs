using System.Security.Cryptography;
using System.Text;

namespace Xtelemdb;

/// <summary>
/// The queues work is sent to. Sending (not publishing) declares the queue, so nothing a watcher
/// or replicator reports is dropped while the inventory has never run. Each queue says what it
/// carries in its arguments (<see cref="Labels"/>), shown on its page in the management UI.
/// </summary>
public static class Queues
{
    /// <summary>The inventory's queue of observations.</summary>
    public const string FileChanged = "file-changed";

    /// <summary>The inventory's queue of copies made.</summary>
    public const string ReplicaUpdated = "replica-updated";

    /// <summary>The inventory's queue of resyncs, bound to the exchange operators publish to.</summary>
    public const string ResyncRequested = "resync-requested";

    /// <summary>The exchange an operator publishes a resync to in the management UI.</summary>
    public const string ResyncExchange = "Xtelemdb:ResyncRequested";

    /// <summary>The inventory's answers to resyncs, for an operator to read with "Get messages".</summary>
    public const string ResyncResults = "resync-results";

    /// <summary>Answers kept in <see cref="ResyncResults"/>: the newest; older ones are dropped, so it never grows.</summary>
    public const int ResyncResultsKept = 100;

    /// <summary>The inventory's queue of replicas added, whose backlog it sends.</summary>
    public const string BackfillReplica = "backfill-replica";

    /// <summary>Copies the rolling fixity check found damaged, repaired or not: an error queue, where operators look.</summary>
    public const string FixityDamaged = "fixity_error";

    /// <summary>Where a queue's requests go when they fail for good: MassTransit's "_error" queue beside it.</summary>
    public const string ErrorSuffix = "_error";

    /// <summary>Where a queue's messages go that none of its consumers takes: MassTransit's "_skipped" queue beside it.</summary>
    public const string SkippedSuffix = "_skipped";

    /// <summary>The argument that says, in the management UI, what a queue carries.</summary>
    public const string DescriptionArgument = "xtelemdb.description";

    /// <summary>
    /// One queue per (origin host, replica), so each backlog is its own line in the management UI:
    /// "replicate-exao1-to-backup-mnt-backup-3f2a9c". The hash keeps two URLs with the same slug apart.
    /// </summary>
    public static string Replicate(string originHost, string replicaUrl) =>
        $"replicate-{Slug(originHost, 40)}-to-{Slug(replicaUrl, 60)}-{ShortHash(originHost + "\n" + replicaUrl)}";

    /// <summary>A queue of one process that lives as long as it does, named for its host and purpose: "replicator-exao1-replica-set-3f2a9c".</summary>
    public static string OfProcess(string service, string host, string purpose) =>
        $"{service}-{Slug(host, 40)}-{purpose}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";

    /// <summary>Whether MassTransit keeps an error queue beside it: a queue a consumer of the pipeline reads.</summary>
    public static bool HasErrorQueue(string queue) =>
        queue is FileChanged or ReplicaUpdated or ResyncRequested or BackfillReplica || queue.StartsWith("replicate-", StringComparison.Ordinal);

    /// <summary>The arguments a queue is declared with to say what it carries; empty for a queue not ours.</summary>
    public static IReadOnlyDictionary<string, object> Labels(string queue) =>
        Description(queue) is { } description ? new Dictionary<string, object> { [DescriptionArgument] = description } : new Dictionary<string, object>();

    /// <summary>The labels of a replicate queue: what it carries, for which origin host and replica.</summary>
    public static IReadOnlyDictionary<string, object> ReplicateLabels(string originHost, string replicaUrl) => new Dictionary<string, object>
    {
        [DescriptionArgument] = $"copy requests for {originHost}'s files to replica {replicaUrl}, consumed by the replicators that read {originHost}'s files and write that replica",
        ["xtelemdb.origin-host"] = originHost,
        ["xtelemdb.replica"] = replicaUrl,
    };

    /// <summary>What the error queue beside a queue holds, from what that queue carries.</summary>
    public static string ErrorDescription(string queue) =>
        $"requests from {queue} that failed for good; each message's MT-Fault-Message header says why. "
        + "Once the cause is mended, move them back (Move messages) or purge them and run 'xtelemdb sync'";

    /// <summary>What the skipped queue beside a queue holds.</summary>
    public static string SkippedDescription(string queue) =>
        $"messages sent to {queue} that none of its consumers takes (another tool's, or a newer version's); nothing reads them here";

    static string? Description(string queue) => queue switch
    {
        FileChanged => "files seen changed or missing, sent by every watcher, consumed by the inventory",
        ReplicaUpdated => "copies made, reported by the replicators, consumed by the inventory",
        ResyncRequested => $"resyncs published to exchange {ResyncExchange} (JSON: replica, originHost, pathPrefix), consumed by the inventory; answers go to {ResyncResults}",
        ResyncResults => $"the inventory's answer to each resync: copies requested, or why it was refused (the newest {ResyncResultsKept}; read them with Get messages)",
        BackfillReplica => "replicas added, whose backlog the inventory sends",
        FixityDamaged => "copies the rolling fixity check found damaged (their bytes changed, their size and mtime did not): which, and whether and from where they were repaired; nothing reads them here",
        _ when queue.EndsWith(ErrorSuffix, StringComparison.Ordinal) => ErrorDescription(queue[..^ErrorSuffix.Length]),
        _ when queue.EndsWith(SkippedSuffix, StringComparison.Ordinal) => SkippedDescription(queue[..^SkippedSuffix.Length]),
        _ => null,
    };

    static string Slug(string text, int maxLength)
    {
        var slug = new StringBuilder(text.Length);
        foreach (var c in text.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c))
                slug.Append(c);
            else if (slug.Length > 0 && slug[^1] != '-')
                slug.Append('-');
        }
        var result = slug.ToString().Trim('-');
        return result.Length > maxLength ? result[..maxLength].TrimEnd('-') : result;
    }

    static string ShortHash(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..6];
}
