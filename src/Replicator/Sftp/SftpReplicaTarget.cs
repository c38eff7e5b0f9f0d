using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using Renci.SshNet.Common;
using Renci.SshNet.Sftp;
using Xtelemdb.Hosting;
using Xtelemdb.Replicator.Copying;
using static Xtelemdb.Replicator.Sftp.SftpWire;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// A replica on an SSH host, over SFTP. The copy keeps every rule of the local one: a temporary
/// name in the target folder, the mtime set, posix-rename over the target (the old copy moved aside
/// and removed after the rename where the server lacks it), folders made as needed, the size checked
/// after the rename, the checksum of the bytes sent recorded, the part file flushed where the server
/// offers fsync@openssh.com. SFTP keeps mtimes to the second, so versions compare at seconds.
///
/// Built for a long link: a copy's requests go back to back and their replies are awaited together
/// (a small file costs about four round trips, whatever the link), many copies share a few sessions,
/// and a large file is spread over several sessions' channel windows (<see cref="SftpTransfer"/>).
/// A transfer cut by a failure resumes from what the server acknowledged, and a file that grew by
/// appends sends only what was appended.
/// </summary>
/// <param name="writer">This replicator process (its host and an id of its own): replicators of several hosts, or several of one host, write one SFTP replica, each through part files of its own.</param>
public sealed class SftpReplicaTarget(string prefix, SftpSessions sessions, BandwidthLimit? limit, string writer) : IReplicaTarget, IDisposable
{
    /// <summary>The old copy's name while a server without posix-rename replaces it.</summary>
    public const string AsideSuffix = ".xtelemdb-old";

    readonly ConcurrentDictionary<string, bool> folders = new(StringComparer.Ordinal);
    readonly SftpTransfer transfer = new(sessions, limit, writer);
    string? absolutePrefix;

    public async Task<string> PrefixAsync(CancellationToken cancellationToken)
    {
        if (absolutePrefix is not null)
            return absolutePrefix;
        return await UseAsync(cancellationToken, async wire =>
        {
            // A path without a leading slash is relative to the login's home, where SFTP sessions start.
            var home = wire.Client.WorkingDirectory.TrimEnd('/');
            var given = Path.TrimEndingDirectorySeparator(prefix.StartsWith('/') ? prefix : $"{home}/{prefix}");
            // Canonical, as the server resolves it: the folders below it are checked one by one for symlinks.
            string canonical;
            try
            {
                canonical = await wire.RealPathAsync(given, cancellationToken);
            }
            catch (SftpPathNotFoundException)
            {
                canonical = given;
            }
            return absolutePrefix = canonical;
        });
    }

    public async Task<string> PathForAsync(string originHost, string originPath, CancellationToken cancellationToken) =>
        ReplicaTargets.PathFor(await PrefixAsync(cancellationToken), originHost, originPath);

    /// <summary>
    /// Every folder between the prefix and the target not yet made or checked by this replicator,
    /// the target and the part file, each lstat'ed (never followed) in one round trip.
    /// </summary>
    public async Task EnsureInsidePrefixAsync(string target, CancellationToken cancellationToken)
    {
        var root = await PrefixAsync(cancellationToken);
        var walk = new List<string>();
        for (var folder = Path.GetDirectoryName(target)!; folder.Length > root.Length && !folders.ContainsKey(folder); folder = Path.GetDirectoryName(folder)!)
            walk.Add(folder);
        // The part file is created exclusively (O_EXCL), which a symlink planted at its name refuses.
        var files = new[] { target };
        var found = await UseAsync(cancellationToken, async wire =>
        {
            var replies = new List<Task<SftpFileAttributes?>>();
            foreach (var path in walk.Concat(files))
                replies.Add(await wire.SendLStat(path, cancellationToken));
            return await Task.WhenAll(replies);
        });
        for (var i = walk.Count - 1; i >= 0; i--)
        {
            if (found[i] is { IsSymbolicLink: true })
                throw new UnsafePathException($"refusing to copy to {sessions.Endpoint}:{target}: {walk[i]} is a symlink{await PointsToAsync(walk[i], cancellationToken)} and may lead out of {root}");
            // A file where a folder must go (an origin file replaced by a folder): the old copy stays, and the request is refused at once.
            if (found[i] is { IsDirectory: false })
                throw new UnsafePathException($"refusing to copy to {sessions.Endpoint}:{target}: {walk[i]} is a file, not a folder");
        }
        for (var i = 0; i < files.Length; i++)
        {
            if (found[walk.Count + i] is { IsSymbolicLink: true })
                throw new UnsafePathException($"refusing to copy to {sessions.Endpoint}:{target}: {files[i]} is a symlink{await PointsToAsync(files[i], cancellationToken)}");
        }
    }

    /// <summary>" (to /where/it/leads)", for the refusal's message; empty where the server cannot say (a dangling link).</summary>
    async Task<string> PointsToAsync(string link, CancellationToken cancellationToken)
    {
        try
        {
            return $" (to {await UseAsync(cancellationToken, wire => wire.RealPathAsync(link, cancellationToken))})";
        }
        catch (Exception e) when (e is SshException or IOException)
        {
            return "";
        }
    }

    public Task<FileVersion?> StatAsync(string path, CancellationToken cancellationToken) =>
        UseAsync(cancellationToken, async wire => await wire.LStatAsync(path, cancellationToken) is { IsRegularFile: true } attributes
            ? new FileVersion(attributes.LastWriteTimeUtc, attributes.Size)
            : (FileVersion?)null);

    public bool Holds(FileVersion copy, FileVersion source) => copy.Size == source.Size && Seconds(copy.Mtime) == Seconds(source.Mtime);

    static long Seconds(DateTime time) => time.Ticks / TimeSpan.TicksPerSecond;

    public bool KeepsMtimes => false;

    public bool Appends => true;

    public HeldCopy? LastCopied(string path) => transfer.LastCopied(path);

    /// <summary>Whether the server offers fsync@openssh.com, learnt from the first session; copies are flushed where it does.</summary>
    bool? flushes;

    public string? Unflushed => flushes == false
        ? $"{sessions.Endpoint} does not offer {FsyncExtension}: copies reach its disk when its kernel writes them back (within about 30 s)"
        : null;

    public async Task<(FileVersion Version, string Checksum)?> CopyAsync(string source, string target, HeldCopy? held, Action<long>? progress, CancellationToken cancellationToken,
        string? mustHashTo = null)
    {
        using var input = SourceFile.Open(source);
        // Many small copies share the link well; large ones go a few at a time, each over several sessions,
        // rather than hundreds at a crawl that would all outlast copy_timeout.
        var large = input.Version.Size >= SftpTransfer.SpreadFrom;
        if (large)
            await bulk.WaitAsync(cancellationToken);
        try
        {
            return await SendAndRenameAsync(input, target, held, progress, mustHashTo, cancellationToken);
        }
        finally
        {
            if (large)
                bulk.Release();
        }
    }

    readonly SemaphoreSlim bulk = new(sessions.Connections);

    async Task<(FileVersion Version, string Checksum)?> SendAndRenameAsync(SourceFile input, string target, HeldCopy? held,
        Action<long>? progress, string? mustHashTo, CancellationToken cancellationToken)
    {
        return await UseAsync(cancellationToken, async wire =>
        {
            await MakeFoldersAsync(wire, Path.GetDirectoryName(target)!, cancellationToken);
            flushes ??= wire.Extensions.Contains(FsyncExtension);
            var (part, checksum) = await transfer.SendAsync(wire, input, target, held, flushes == true, progress, cancellationToken);
            if (checksum is null || mustHashTo is not null && checksum != mustHashTo)
            {
                await wire.RemoveAsync(part, cancellationToken);
                return checksum is null
                    ? ((FileVersion, string)?)null
                    : throw new ChecksumMismatchException($"{input.Path} hashes to {checksum}, not {mustHashTo}: {sessions.Endpoint}:{target} is left as it was");
            }
            var landed = await RenameAsync(wire, part, target, cancellationToken);
            if (landed?.Size != input.Version.Size)
                throw new IOException($"{sessions.Endpoint}:{target} holds {landed?.Size.ToString() ?? "nothing"} bytes after the rename, not {input.Version.Size}");
            transfer.Done(target, new HeldCopy(input.Version, checksum));
            return (input.Version, checksum);
        });
    }

    /// <summary>
    /// posix-rename@openssh.com, after an lstat finds nothing at the target (SFTP has no rename that
    /// refuses to replace), and the target's lstat in the same round trip. A server without it gets
    /// no rename: a plain SFTP rename is a replace on some servers, and the caller copies instead.
    /// SFTP cannot flush a folder: the rename reaches the disk as the server's own metadata does.
    /// </summary>
    public Task<FileVersion?> MoveAsync(string from, string to, CancellationToken cancellationToken) =>
        UseAsync<FileVersion?>(cancellationToken, async wire =>
        {
            if (!wire.Extensions.Contains(PosixRenameExtension))
                return null;
            await MakeFoldersAsync(wire, Path.GetDirectoryName(to)!, cancellationToken);
            if (await wire.LStatAsync(to, cancellationToken) is not null)
                return null;
            var renamed = await wire.SendPosixRename(from, to, cancellationToken);
            var landed = await wire.SendLStat(to, cancellationToken);
            try
            {
                await renamed;
            }
            catch (Exception e) when (e is SftpPathNotFoundException or NotSupportedException)
            {
                await landed;
                return null; // renamed away meanwhile (another move of the same copy), or refused though offered
            }
            return await landed is { IsRegularFile: true } attributes
                ? new FileVersion(attributes.LastWriteTimeUtc, attributes.Size)
                : throw new IOException($"{sessions.Endpoint}:{to} is not a regular file after {from} was renamed to it");
        });

    public async IAsyncEnumerable<ReplicaEntry> ListAsync(string folder, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var entries = await UseAsync(cancellationToken, wire => wire.ListAsync(folder, cancellationToken));
        foreach (var (name, attributes) in entries.Where(e => e.Name is not ("." or "..")))
        {
            yield return new ReplicaEntry($"{folder.TrimEnd('/')}/{name}", attributes.IsDirectory, attributes.IsSymbolicLink,
                new FileVersion(attributes.LastWriteTimeUtc, attributes.IsDirectory ? 0 : attributes.Size));
        }
    }

    public Task<string> ChecksumAsync(string path, CancellationToken cancellationToken) =>
        UseAsync(cancellationToken, async wire => FileChecksum.Format(await SftpTransfer.HashAsync(wire, path, cancellationToken)));

    public async Task<bool> HasMarkerAsync(CancellationToken cancellationToken)
    {
        var marker = (await PrefixAsync(cancellationToken)) + "/" + ReplicaMarker.FileName;
        return await UseAsync(cancellationToken, async wire => await wire.LStatAsync(marker, cancellationToken) is { IsRegularFile: true });
    }

    public async Task WriteMarkerAsync(string content, CancellationToken cancellationToken)
    {
        var root = await PrefixAsync(cancellationToken);
        await UseAsync(cancellationToken, async wire =>
        {
            if (await wire.LStatAsync(root, cancellationToken) is not { IsDirectory: true })
                throw new DirectoryNotFoundException($"the replica folder {root} does not exist on {sessions.Endpoint}");
            var bytes = System.Text.Encoding.UTF8.GetBytes(content);
            var handle = await wire.OpenAsync(root + "/" + ReplicaMarker.FileName, Access.Create, cancellationToken);
            var written = await wire.SendWrite(handle, 0, bytes, bytes.Length, cancellationToken);
            var closed = await wire.SendClose(handle, cancellationToken);
            await Task.WhenAll(written, closed);
            return true;
        });
    }

    /// <summary>Runs SFTP requests on the least busy session; a failure of the session itself reads as an IOException naming the server.</summary>
    async Task<T> UseAsync<T>(CancellationToken cancellationToken, Func<SftpWire, Task<T>> work)
    {
        try
        {
            using var lease = await sessions.NextAsync(cancellationToken);
            return await work(lease.Wire);
        }
        catch (Exception e) when (e is SshException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException
            && e is not (SftpPathNotFoundException or SshReplicaException or FileNotFoundException))
        {
            throw new IOException($"SFTP to {sessions.Endpoint} failed: {e.Message}", e);
        }
    }

    /// <summary>
    /// The target's folder and those above it up to the prefix, made where missing, in one round
    /// trip: a mkdir for every level not known to exist, top down, then an lstat of each, all sent
    /// together (the server serves them in order). A mkdir refused because the folder is there is
    /// fine; the lstats tell it from a real failure. Copies into one new folder wait for the same making.
    /// </summary>
    Task MakeFoldersAsync(SftpWire wire, string folder, CancellationToken cancellationToken)
    {
        if (folders.ContainsKey(folder))
            return Task.CompletedTask;
        var making = makingFolders.GetOrAdd(folder, f => new Lazy<Task>(() => MakeAsync(wire, f)));
        return making.Value.WaitAsync(cancellationToken);
    }

    readonly ConcurrentDictionary<string, Lazy<Task>> makingFolders = new(StringComparer.Ordinal);

    /// <summary>Not bound to one copy's token: other copies may be waiting for the same folder.</summary>
    async Task MakeAsync(SftpWire wire, string folder)
    {
        try
        {
            var root = absolutePrefix ?? throw new InvalidOperationException("the prefix is resolved before any copy");
            var levels = new List<string>();
            for (var level = folder; level.Length > root.Length && !folders.ContainsKey(level); level = Path.GetDirectoryName(level)!)
                levels.Insert(0, level);
            var made = new List<Task<object?>>();
            foreach (var level in levels)
                made.Add(await wire.SendMkDir(level, CancellationToken.None));
            var stats = new List<Task<SftpFileAttributes?>> { await wire.SendLStat(root, CancellationToken.None) };
            foreach (var level in levels)
                stats.Add(await wire.SendLStat(level, CancellationToken.None));
            if (await stats[0] is not { IsDirectory: true })
                throw new IOException($"the replica folder {root} does not exist on {sessions.Endpoint}");
            for (var i = 0; i < levels.Count; i++)
            {
                var refusal = await made[i].ContinueWith(t => t.Exception?.InnerException, TaskScheduler.Default);
                if (refusal is not null and not SshException)
                    throw refusal;
                if (await stats[i + 1] is not { IsDirectory: true })
                    throw new IOException($"cannot make the folder {levels[i]} on {sessions.Endpoint}: {refusal?.Message ?? "it is not a folder"}", refusal);
            }
            folders[folder] = true;
        }
        finally
        {
            // Made, or failed: the next copy looks again.
            makingFolders.TryRemove(folder, out _);
        }
    }

    /// <summary>
    /// posix-rename@openssh.com replaces the target atomically; the target's lstat goes in the same
    /// round trip. Without it (not offered, or refused: OpenSSH's sftp-server -P), plain SFTP rename
    /// will not replace a file, so the old copy is moved aside, the new one renamed into place and
    /// only then the old one removed: the old copy is never deleted before the new one stands in
    /// its place, and comes back if the rename fails.
    /// </summary>
    async Task<SftpFileAttributes?> RenameAsync(SftpWire wire, string part, string target, CancellationToken cancellationToken)
    {
        if (wire.Extensions.Contains(PosixRenameExtension))
        {
            var renamed = await wire.SendPosixRename(part, target, cancellationToken);
            var landed = await wire.SendLStat(target, cancellationToken);
            try
            {
                await renamed;
                return await landed;
            }
            catch (Exception e) when (e is NotSupportedException or SftpPermissionDeniedException)
            {
                await landed;
            }
        }
        if (await wire.LStatAsync(target, cancellationToken) is null)
        {
            await wire.RenameAsync(part, target, cancellationToken);
            return await wire.LStatAsync(target, cancellationToken);
        }
        var aside = part[..^LocalFileCopy.PartSuffix.Length] + AsideSuffix;
        if (await wire.LStatAsync(aside, cancellationToken) is not null)
            await wire.RemoveAsync(aside, cancellationToken); // this process's own, left by a failed attempt: the record still names the target
        await wire.RenameAsync(target, aside, cancellationToken);
        try
        {
            await wire.RenameAsync(part, target, cancellationToken);
        }
        catch
        {
            await wire.RenameAsync(aside, target, CancellationToken.None);
            throw;
        }
        await wire.RemoveAsync(aside, cancellationToken);
        return await wire.LStatAsync(target, cancellationToken);
    }

    public void Dispose() => sessions.Dispose();
}
