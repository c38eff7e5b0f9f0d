using Dapper;
using Npgsql;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>What one audit found; a clean audit has no problem at all.</summary>
public sealed record AuditReport(int Files, IReadOnlyList<string> Problems)
{
    public bool Clean => Problems.Count == 0;
    public override string ToString() => $"{Files} files, {Problems.Count} problems" + string.Concat(Problems.Take(10).Select(p => "\n  " + p));
}

/// <summary>
/// The audit every fault scenario ends with: each origin file's current version is on every
/// replica with the same size, mtime and bytes, recorded with its checksum; and no record claims
/// a copy that is not there. Local replicas only (an SFTP replica on 127.0.0.1 is a local folder too).
/// </summary>
public sealed class Audit(string connection)
{
    /// <summary>As the watcher walks a root: every folder, never through a symlink (a link to a folder is not followed).</summary>
    public static readonly EnumerationOptions WithoutLinks = new()
    {
        RecurseSubdirectories = true,
        AttributesToSkip = FileAttributes.ReparsePoint,
        ReturnSpecialDirectories = false,
    };

    sealed record Recorded(string ReplicaUrl, string OriginHost, string OriginPath, DateTime Mtime, long SizeBytes, string ReplicaPath, string? Checksum);

    /// <param name="origins">Each host's data folders, as the watcher of that host sees them.</param>
    /// <param name="replicas">Replica name ("host:/path", or the ssh:// URL) and the local folder its copies are in.</param>
    /// <param name="audited">Which regular files to audit (default: all); a FIFO, a symlink or a name .NET cannot open is never audited.</param>
    /// <param name="watchedAs">Where a host's watcher sees its folder, when the test reads it elsewhere (a host in a mount namespace of its own).</param>
    public async Task<AuditReport> RunAsync(IReadOnlyDictionary<string, string> origins, IReadOnlyDictionary<string, string> replicas,
        Func<string, bool>? audited = null, IReadOnlyDictionary<string, string>? watchedAs = null)
    {
        var problems = new List<string>();
        IReadOnlyList<Recorded> recorded;
        await using (var db = new NpgsqlConnection(connection))
        {
            recorded = (await db.QueryAsync<Recorded>("""
                select case when r.kind = 'local' then r.host || ':' || r.url else r.url end as ReplicaUrl, fr.origin_host as OriginHost, fr.origin_path as OriginPath, fr.mtime as Mtime,
                       fr.size_bytes as SizeBytes, fr.replica_path as ReplicaPath, fr.checksum as Checksum
                  from file_replicas fr join replicas r on r.id = fr.replica_id
                """)).AsList();
        }
        var byKey = recorded.ToDictionary(r => (r.ReplicaUrl, r.OriginHost, r.OriginPath));
        var files = 0;
        foreach (var (host, folder) in origins)
        {
            foreach (var file in Directory.EnumerateFiles(folder, "*", WithoutLinks))
            {
                if (Hosting.FileKinds.Of(file) != Hosting.FileKind.Regular || audited?.Invoke(file) == false)
                    continue;
                files++;
                var source = new FileInfo(file);
                var path = watchedAs?.GetValueOrDefault(host) is { } watched ? watched + file[folder.Length..] : file;
                var mtime = Microseconds.Truncate(source.LastWriteTimeUtc);
                var sourceBytes = new Lazy<byte[]>(() => File.ReadAllBytes(file));
                foreach (var (url, local) in replicas)
                {
                    var copy = new FileInfo(local + "/" + host + path);
                    // Each file is read once: the bytes compared are the bytes hashed.
                    byte[]? copyBytes;
                    try
                    {
                        copyBytes = copy.Exists ? File.ReadAllBytes(copy.FullName) : null;
                    }
                    catch (IOException e)
                    {
                        // A copy being made this moment (its lock travels with the part file renamed into place): not clean yet, looked at again.
                        problems.Add($"busy on {url}: {host}:{path} ({e.Message})");
                        continue;
                    }
                    if (copyBytes is null)
                        problems.Add($"missing on {url}: {host}:{path}");
                    else if (copy.Length != source.Length || !SameMtime(url, copy.LastWriteTimeUtc, mtime))
                        problems.Add($"stale on {url}: {host}:{path} ({copy.Length} bytes, {copy.LastWriteTimeUtc:O})");
                    else if (!copyBytes.AsSpan().SequenceEqual(sourceBytes.Value))
                        problems.Add($"different bytes on {url}: {host}:{path}");
                    if (!byKey.TryGetValue((url, host, path), out var row))
                        problems.Add($"no record on {url}: {host}:{path}");
                    else if (row.Mtime != mtime || row.SizeBytes != source.Length)
                        problems.Add($"record behind on {url}: {host}:{path}");
                    else if (row.Checksum is null || (copyBytes is not null && row.Checksum != Files.Checksum(copyBytes)))
                        problems.Add($"checksum {row.Checksum ?? "missing"} wrong on {url}: {host}:{path}");
                }
            }
        }
        // A record must never claim a copy that is not there (a version that was not really copied).
        foreach (var row in recorded)
        {
            if (!replicas.TryGetValue(row.ReplicaUrl, out var local))
                continue;
            var copy = new FileInfo(local + "/" + row.OriginHost + row.OriginPath);
            if (!copy.Exists || copy.Length != row.SizeBytes || !SameMtime(row.ReplicaUrl, copy.LastWriteTimeUtc, row.Mtime))
                problems.Add($"record without its copy on {row.ReplicaUrl}: {row.OriginHost}:{row.OriginPath}");
        }
        return new AuditReport(files, problems);
    }

    /// <summary>SFTP (version 3) sets whole seconds; a local copy keeps microseconds.</summary>
    static bool SameMtime(string replicaUrl, DateTime copy, DateTime origin) => replicaUrl.StartsWith("ssh://", StringComparison.Ordinal)
        ? copy.Ticks / TimeSpan.TicksPerSecond == origin.Ticks / TimeSpan.TicksPerSecond
        : Microseconds.Truncate(copy) == origin;

    /// <summary>Waits for the pipeline to converge, then asserts a clean audit (FaultTest.AuditAsync runs verify after it).</summary>
    public async Task<AuditReport> PassesAsync(IReadOnlyDictionary<string, string> origins, IReadOnlyDictionary<string, string> replicas, TimeSpan timeout,
        Func<string, bool>? audited = null, IReadOnlyDictionary<string, string>? watchedAs = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        AuditReport report;
        while (!(report = await RunAsync(origins, replicas, audited, watchedAs)).Clean && DateTime.UtcNow < deadline)
        {
            TestContext.Progress.WriteLine($"audit: {report.Problems.Count} problems left; first: {report.Problems[0]}");
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        Assert.That(report.Clean, Is.True, report.ToString());
        return report;
    }
}
