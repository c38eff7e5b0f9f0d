using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;

namespace Xtelemdb.Watcher;

/// <summary>
/// Entries under a root that are not backed up: a FIFO (whose open blocks a reader), a device, a
/// socket. Never skipped in silence: each is logged and counted the first time it is seen.
/// </summary>
public sealed class SkippedFiles(ILogger logger)
{
    readonly ConcurrentDictionary<string, FileKind> seen = new(StringComparer.Ordinal);

    /// <summary>The skipped entries seen so far, with their kind.</summary>
    public IReadOnlyDictionary<string, FileKind> Seen => seen;

    /// <summary>Whether the path is a regular file (or vanished meanwhile); reports it the first time it is not.</summary>
    public bool IsRegular(string path)
    {
        var kind = FileKinds.Of(path);
        // What cannot be told (statx refused) is published: the copy then says what is wrong, rather than a skip in silence.
        if (kind is FileKind.Regular or FileKind.Unknown or FileKind.Missing or FileKind.Folder or FileKind.Symlink)
            return kind is FileKind.Regular or FileKind.Unknown;
        if (seen.TryAdd(path, kind))
        {
            logger.LogWarning("{Path} is {Kind}, not a regular file: not backed up", path, FileKinds.Describe(kind));
            PipelineMetrics.WatcherSkipped.Add(1, new KeyValuePair<string, object?>("kind", kind.ToString().ToLowerInvariant()));
        }
        return false;
    }
}
