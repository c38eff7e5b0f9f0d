using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Monitoring;

namespace Xtelemdb.Watcher;

/// <summary>
/// Entries under a root that are not backed up: a FIFO (whose open blocks a reader), a device, a
/// socket, a name that is not valid UTF-8 (.NET cannot open it by name), a folder the watcher may
/// not read, a file the inventory's database refuses (a path too long for its index). Never skipped in silence: each is logged and counted the first time it is seen, and
/// each full poll's complete list goes to the inventory, where verify lists it.
/// </summary>
public sealed partial class SkippedFiles(ILogger logger)
{
    const int ReadAndSearch = 4 | 1; // R_OK | X_OK

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);

    /// <summary>The list goes again after this many polls even unchanged: one lost on its way is mended.</summary>
    const int ResendEvery = 10;

    readonly ConcurrentDictionary<string, string> reported = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, SkippedFile> refused = new(StringComparer.Ordinal);
    Dictionary<string, SkippedFile> thisPoll = new(StringComparer.Ordinal);
    Dictionary<string, SkippedFile>? sent, pending;
    int pollsSinceSent;
    readonly Dictionary<string, IReadOnlyList<(string Decoded, string Escaped)>> notUtf8 = new(StringComparer.Ordinal);

    /// <summary>Every skipped entry seen since start (path, bad bytes as \xNN) and why.</summary>
    public IReadOnlyDictionary<string, string> Seen => reported;

    /// <summary>Whether the path is a regular file (or vanished meanwhile); reports it the first time it is not.</summary>
    public bool IsRegular(string path)
    {
        var kind = FileKinds.Of(path);
        // What cannot be told (statx refused) is published: the copy then says what is wrong, rather than a skip in silence.
        if (kind is FileKind.Regular or FileKind.Unknown or FileKind.Missing or FileKind.Folder or FileKind.Symlink)
            return kind is FileKind.Regular or FileKind.Unknown;
        Skip(path, FileKinds.Describe(kind), kind.ToString().ToLowerInvariant());
        return false;
    }

    /// <summary>
    /// Whether an entry's name, as .NET decoded it, names it: one that is not valid UTF-8 does not,
    /// and is reported by its bytes (with, for a folder, everything below it).
    /// </summary>
    public bool Nameable(string folder, string name, bool isFolder)
    {
        if (!RawNames.MayBeMangled(name) || FileKinds.Of(Path.Join(folder, name)) != FileKind.Missing)
            return true;
        var reason = isFolder ? "a folder whose name is not valid UTF-8: nothing below it is backed up" : "a name that is not valid UTF-8";
        // One readdir per folder and poll, however many such names it holds; again for a name made since.
        if (!notUtf8.TryGetValue(folder, out var names) || names.All(n => n.Decoded != name))
            notUtf8[folder] = names = RawNames.NotUtf8(folder);
        var escaped = names.Where(n => n.Decoded == name).Select(n => n.Escaped).ToArray();
        foreach (var raw in escaped.Length > 0 ? escaped : [name])
            Skip(Path.Join(folder, raw), reason, "name_not_utf8", isFolder);
        return false;
    }

    /// <summary>Whether the watcher may list a folder; one it may not is reported, with everything below it.</summary>
    public bool Readable(string folder)
    {
        if (!OperatingSystem.IsLinux() || Access(folder, ReadAndSearch) == 0)
            return true;
        Skip(folder, $"a folder this watcher may not read ({Marshal.GetLastPInvokeErrorMessage()}): nothing below it is backed up", "unreadable_folder", folder: true);
        return false;
    }

    /// <summary>A full poll begins: the list it sends is what it finds.</summary>
    public void BeginPoll()
    {
        thisPoll = new(StringComparer.Ordinal);
        notUtf8.Clear();
    }

    /// <summary>
    /// A file the inventory's database refuses (a path too long for its index): listed with the rest
    /// until the watcher reports it again (it changed, or vanished) and it is not refused again.
    /// </summary>
    public void Refused(SkippedFile file)
    {
        refused[file.Path] = file;
        Report(file.Path, file.Reason, "refused");
    }

    /// <summary>The path was reported to the inventory again: it refuses it again, or records it.</summary>
    public void Reported(string path) => refused.TryRemove(path, out _);

    /// <summary>The poll's complete list when it differs from the last one sent (always after a start); null otherwise.</summary>
    public IReadOnlyList<SkippedFile>? Changed()
    {
        // A copy: the live watcher may add to this poll's list, and the inventory refuse files, while the list is on its way.
        var current = new Dictionary<string, SkippedFile>(thisPoll, StringComparer.Ordinal);
        foreach (var (path, file) in refused)
            current.TryAdd(path, file);
        if (sent is not null && ++pollsSinceSent < ResendEvery
            && sent.Count == current.Count && sent.All(s => current.TryGetValue(s.Key, out var now) && now == s.Value))
            return null;
        pending = current;
        return [.. pending.Values.OrderBy(s => s.Path, StringComparer.Ordinal)];
    }

    /// <summary>The list <see cref="Changed"/> gave has reached the inventory.</summary>
    public void Sent()
    {
        sent = pending;
        pollsSinceSent = 0;
    }

    void Skip(string path, string reason, string kind, bool folder = false)
    {
        thisPoll[path] = new SkippedFile(path, reason, folder);
        Report(path, reason, kind);
    }

    /// <summary>Logged and counted the first time.</summary>
    void Report(string path, string reason, string kind)
    {
        if (reported.TryAdd(path, reason))
        {
            logger.LogWarning("{Path} is {Reason}: not backed up", path, reason);
            PipelineMetrics.WatcherSkipped.Add(1, new KeyValuePair<string, object?>("kind", kind));
        }
    }
}
