using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using Renci.SshNet;
using Renci.SshNet.Common;
using Renci.SshNet.Sftp;
using Xtelemdb.Hosting;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Replicator.Sftp;

/// <summary>
/// A replica on an SSH host, over SFTP. The copy keeps every rule of the local one: a temporary
/// name in the target folder, the mtime set, posix-rename over the target (the old copy moved aside
/// and removed after the rename where the server lacks it), folders made as needed, the size checked after the rename, the checksum
/// of the bytes sent recorded, the part file flushed where the server offers fsync@openssh.com.
/// SFTP keeps mtimes to the second, so versions compare at seconds.
/// </summary>
/// <param name="writer">This replicator process (its host and an id of its own): replicators of several hosts, or several of one host, write one SFTP replica, each through part files of its own.</param>
public sealed class SftpReplicaTarget(string prefix, SftpPool pool, BandwidthLimit? limit, string writer) : IReplicaTarget, IDisposable
{
    /// <summary>The old copy's name while a server without posix-rename replaces it.</summary>
    public const string AsideSuffix = ".xtelemdb-old";

    readonly ConcurrentDictionary<string, bool> folders = new(StringComparer.Ordinal);
    string? absolutePrefix;

    public async Task<string> PrefixAsync(CancellationToken cancellationToken)
    {
        if (absolutePrefix is not null)
            return absolutePrefix;
        using var lease = await pool.RentAsync(cancellationToken);
        // A path without a leading slash is relative to the login's home, where SFTP sessions start.
        var home = lease.Client.WorkingDirectory.TrimEnd('/');
        var given = Path.TrimEndingDirectorySeparator(prefix.StartsWith('/') ? prefix : $"{home}/{prefix}");
        // Canonical, as the server resolves it: below it, a path whose canonical name differs passes through a symlink.
        return absolutePrefix = Resolve(lease.Client, given).Canonical ?? given;
    }

    public async Task<string> PathForAsync(string originHost, string originPath, CancellationToken cancellationToken) =>
        ReplicaTargets.PathFor(await PrefixAsync(cancellationToken), originHost, originPath);

    public async Task EnsureInsidePrefixAsync(string target, CancellationToken cancellationToken)
    {
        var root = await PrefixAsync(cancellationToken);
        await UseAsync(cancellationToken, client =>
        {
            for (var folder = Path.GetDirectoryName(target)!; folder.Length > root.Length; folder = Path.GetDirectoryName(folder)!)
            {
                if (folders.ContainsKey(folder))
                    break; // made or checked by this replicator: no symlink there
                var found = Resolve(client, folder);
                if (found.IsLink)
                    throw new UnsafePathException($"refusing to copy to {pool.Endpoint}:{target}: {folder} is a symlink{found.To} and may lead out of {root}");
                // A file where a folder must go (an origin file replaced by a folder): the old copy stays, and the request is refused at once.
                if (found.Attributes is { IsDirectory: false })
                    throw new UnsafePathException($"refusing to copy to {pool.Endpoint}:{target}: {folder} is a file, not a folder");
            }
            // The part file too: one planted as a symlink would have the upload write through it.
            foreach (var path in new[] { target, LocalFileCopy.PartPath(target, writer) })
            {
                if (Resolve(client, path) is { IsLink: true } link)
                    throw new UnsafePathException($"refusing to copy to {pool.Endpoint}:{target}: {path} is a symlink{link.To}");
            }
            return true;
        });
    }

    public Task<FileVersion?> StatAsync(string path, CancellationToken cancellationToken) =>
        UseAsync(cancellationToken, client => LStat(client, path) is { IsRegularFile: true } attributes
            ? new FileVersion(attributes.LastWriteTimeUtc, attributes.Size)
            : (FileVersion?)null);

    public bool Holds(FileVersion copy, FileVersion source) => copy.Size == source.Size && Seconds(copy.Mtime) == Seconds(source.Mtime);

    static long Seconds(DateTime time) => time.Ticks / TimeSpan.TicksPerSecond;

    public bool KeepsMtimes => false;

    /// <summary>Whether the server offers fsync@openssh.com, learnt from the first session; copies are flushed where it does.</summary>
    bool? flushes;

    public string? Unflushed => flushes switch
    {
        false when !SftpFsync.Available => $"this build's SSH.NET cannot send {SftpFsync.Extension}: copies on {pool.Endpoint} reach its disk when its kernel writes them back (within about 30 s)",
        false => $"{pool.Endpoint} does not offer {SftpFsync.Extension}: copies reach its disk when its kernel writes them back (within about 30 s)",
        _ => null,
    };

    public async Task<(FileVersion Version, string Checksum)?> CopyAsync(string source, string target, Action<long>? progress, CancellationToken cancellationToken)
    {
        using var input = SourceFile.Open(source);
        var hash = new XxHash3();
        var folder = Path.GetDirectoryName(target)!;
        var part = LocalFileCopy.PartPath(target, writer);
        return await UseAsync(cancellationToken, client =>
        {
            MakeFolders(client, folder, prefixLength: (absolutePrefix ?? "").Length);
            var upload = new UploadStream(input, hash, limit, cancellationToken);
            // UploadFile pipelines its writes; SftpFileStream would wait for each acknowledgement.
            client.UploadFile(upload, part, canOverride: true, sent => progress?.Invoke((long)sent));
            client.SetLastWriteTimeUtc(part, input.Version.Mtime);
            if (!input.Unchanged(upload.BytesRead))
            {
                client.DeleteFile(part);
                return ((FileVersion, string)?)null;
            }
            Flush(client, part);
            Rename(client, part, target);
            var landed = client.GetAttributes(target);
            if (landed.Size != input.Version.Size)
                throw new IOException($"{pool.Endpoint}:{target} holds {landed.Size} bytes after the rename, not {input.Version.Size}");
            return (input.Version, FileChecksum.Format(hash));
        });
    }

    public async IAsyncEnumerable<ReplicaEntry> ListAsync(string folder, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var entries = await UseAsync(cancellationToken, client => client.ListDirectory(folder)
            .Where(f => f.Name is not ("." or ".."))
            .Select(f => new ReplicaEntry(f.FullName, f.IsDirectory, f.IsSymbolicLink, new FileVersion(f.LastWriteTimeUtc, f.IsDirectory ? 0 : f.Length)))
            .ToArray());
        foreach (var entry in entries)
            yield return entry;
    }

    public Task<string> ChecksumAsync(string path, CancellationToken cancellationToken) =>
        UseAsync(cancellationToken, client =>
        {
            var hash = new XxHash3();
            using var stream = client.OpenRead(path);
            hash.Append(stream);
            return FileChecksum.Format(hash);
        });

    public async Task<bool> HasMarkerAsync(CancellationToken cancellationToken)
    {
        var marker = (await PrefixAsync(cancellationToken)) + "/" + ReplicaMarker.FileName;
        return await UseAsync(cancellationToken, client => LStat(client, marker) is { IsRegularFile: true });
    }

    public async Task WriteMarkerAsync(string content, CancellationToken cancellationToken)
    {
        var root = await PrefixAsync(cancellationToken);
        await UseAsync(cancellationToken, client =>
        {
            if (LStat(client, root) is not { IsDirectory: true })
                throw new DirectoryNotFoundException($"the replica folder {root} does not exist on {pool.Endpoint}");
            client.WriteAllText(root + "/" + ReplicaMarker.FileName, content);
            return true;
        });
    }

    /// <summary>Runs blocking SFTP calls on a pooled session; a session that threw is dropped.</summary>
    async Task<T> UseAsync<T>(CancellationToken cancellationToken, Func<SftpClient, T> work)
    {
        using var lease = await pool.RentAsync(cancellationToken);
        try
        {
            return await Task.Run(() => work(lease.Client), cancellationToken);
        }
        catch (Exception e) when (e is SshException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException && e is not SftpPathNotFoundException)
        {
            lease.Fail();
            throw new IOException($"SFTP to {pool.Endpoint} failed: {e.Message}", e);
        }
    }

    /// <summary>What a path is, without following a symlink to it or on the way to it.</summary>
    /// <param name="Canonical">The server's canonical name of the path (realpath); null where it does not exist.</param>
    readonly record struct Resolved(SftpFileAttributes? Attributes, string? Canonical, string Path)
    {
        public bool IsLink => Attributes is { IsSymbolicLink: true } || Canonical is not null && Canonical != Path;
        public string To => Canonical is not null && Canonical != Path ? $" (to {Canonical})" : "";
    }

    /// <summary>
    /// SSH.NET's path calls let the server resolve the path first (realpath) and then lstat the
    /// result, so a symlink is never seen as one. The canonical name tells instead: under the
    /// canonical prefix, a path whose canonical name differs passes through a symlink; a dangling
    /// one (realpath fails) is lstat'ed as itself.
    /// </summary>
    static Resolved Resolve(SftpClient client, string path)
    {
        try
        {
            var file = client.Get(path);
            return new Resolved(file.Attributes, file.FullName, path);
        }
        catch (SftpPathNotFoundException)
        {
            return new Resolved(null, null, path);
        }
    }

    static SftpFileAttributes? LStat(SftpClient client, string path)
    {
        try
        {
            return client.GetAttributes(path);
        }
        catch (SftpPathNotFoundException)
        {
            return null;
        }
    }

    void MakeFolders(SftpClient client, string folder, int prefixLength)
    {
        if (folders.ContainsKey(folder))
            return;
        var missing = new Stack<string>();
        var current = folder;
        for (; current.Length > prefixLength && LStat(client, current) is null; current = Path.GetDirectoryName(current)!)
            missing.Push(current);
        if (current.Length <= prefixLength && LStat(client, current) is not { IsDirectory: true })
            throw new IOException($"the replica folder {current} does not exist on {pool.Endpoint}");
        foreach (var path in missing)
        {
            try
            {
                client.CreateDirectory(path);
            }
            catch (SshException) when (LStat(client, path) is { IsDirectory: true })
            {
                // Made meanwhile by another copy.
            }
        }
        folders[folder] = true;
    }

    /// <summary>
    /// The part file's bytes and mtime to the server's disk before the rename, where the server
    /// can (fsync@openssh.com on a handle opened again: UploadFile closes its own). SFTP cannot
    /// flush a folder, so the rename itself may still be undone by a crash of the server: the
    /// target then holds the previous complete copy, which verify tells from the record.
    /// </summary>
    void Flush(SftpClient client, string part)
    {
        flushes ??= SftpFsync.OfferedBy(client);
        if (flushes != true)
            return;
        using var file = client.Open(part, FileMode.Open, FileAccess.Read);
        SftpFsync.Flush(client, file.Handle, client.OperationTimeout > TimeSpan.Zero ? client.OperationTimeout : TimeSpan.FromMinutes(1));
    }

    /// <summary>
    /// posix-rename@openssh.com replaces the target atomically. Without it (not offered, or refused:
    /// OpenSSH's sftp-server -P), plain SFTP rename will not replace a file, so the old copy is moved
    /// aside, the new one renamed into place and only then the old one removed: the old copy is
    /// never deleted before the new one stands in its place, and comes back if the rename fails.
    /// </summary>
    void Rename(SftpClient client, string part, string target)
    {
        try
        {
            client.RenameFile(part, target, isPosix: true);
            return;
        }
        catch (Exception e) when (e is NotSupportedException or SftpPermissionDeniedException)
        {
        }
        if (LStat(client, target) is null)
        {
            client.RenameFile(part, target, isPosix: false);
            return;
        }
        var aside = part[..^LocalFileCopy.PartSuffix.Length] + AsideSuffix;
        if (LStat(client, aside) is not null)
            client.DeleteFile(aside); // this process's own, left by a failed attempt: the record still names the target
        client.RenameFile(target, aside, isPosix: false);
        try
        {
            client.RenameFile(part, target, isPosix: false);
        }
        catch
        {
            client.RenameFile(aside, target, isPosix: false);
            throw;
        }
        client.DeleteFile(aside);
    }

    public void Dispose() => pool.Dispose();
}
