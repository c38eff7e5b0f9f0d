using System.Text;
using Dapper;
using Npgsql;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The instrument network in a box: each instrument host a process in its own mount and UTS
/// namespace (its own host name, its own data at the same path, its own private backup folder at
/// the same path), sharing the broker, the database and an SFTP backup host on the loopback.
/// exao1 runs the inventory and owns the backup disk, which it fills with the other hosts' files
/// through their data mounted on it (as MagAO-X's backup host reads them over NFS); every host
/// writes its own files to the SFTP replica.
/// </summary>
public sealed class InstrumentNetworkTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    static readonly string[] Hosts = ["exao1", "exao2", "exao3"];

    string HostFolder(string host, string what) => Path.Combine(pipeline.Root, "hosts", host, what);
    string MountOf(string host) => Path.Combine(pipeline.Root, "mounts", host);

    /// <summary>The host's TOML file: the test's own, with its host name, its replicas and what it mounts.</summary>
    string Configure(string host, string backup, string sftp, string sftpTable, bool ownsTheDisk)
    {
        var replicas = ownsTheDisk ? new[] { backup, sftp } : [sftp];
        pipeline.Configure(replicas, tables: new Dictionary<string, string> { [backup] = "local = true", [sftp] = sftpTable });
        var toml = new StringBuilder(File.ReadAllText(pipeline.ConfigPath).Replace($"host = \"{TestPipeline.Host}\"", $"host = \"{host}\"", StringComparison.Ordinal));
        foreach (var other in ownsTheDisk ? Hosts.Where(h => h != host) : [])
            toml.Append($"[origins.\"{other}\"]\nmount = \"{MountOf(other)}\"\n\n");
        var path = HostFolder(host, "xtelemdb.toml");
        File.WriteAllText(path, toml.ToString());
        return path;
    }

    /// <summary>Runs xtelemdb as on the host: its host name, its data at the watched path, its private backup folder, its NFS mounts.</summary>
    XtelemdbProcess OnHost(string host, string backup, IEnumerable<string> arguments)
    {
        var script = new StringBuilder("set -e\n");
        script.Append($"hostname {host}\n");
        script.Append($"mount --bind '{HostFolder(host, "data")}' '{pipeline.Data}'\n");
        script.Append($"mount --bind '{HostFolder(host, "backup")}' '{backup}'\n");
        if (host == "exao1")
        {
            foreach (var other in Hosts.Where(h => h != host))
                script.Append($"mount --bind -o ro '{HostFolder(other, "data")}' '{MountOf(other)}{pipeline.Data}'\n");
        }
        script.Append($"exec '{TestPipeline.Executable}'");
        foreach (var argument in arguments)
            script.Append($" '{argument}'");
        return pipeline.StartProgram("unshare", null, ["--mount", "--uts", "--propagation", "private", "sh", "-c", script.ToString()]);
    }

    async Task<(int ExitCode, string Output)> RunOnHostAsync(string host, string backup, params string[] arguments)
    {
        var run = OnHost(host, backup, arguments);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await run.Process.WaitForExitAsync(timeout.Token);
        run.Process.WaitForExit();
        return (run.Process.ExitCode, run.Output);
    }

    static IReadOnlyList<string> WriteFiles(string data, string host, string prefix, int count) =>
        Enumerable.Range(0, count).Select(i =>
        {
            var relative = Path.Combine(i % 2 == 0 ? "telem" : "logs", $"{host}_{i % 3}", $"{prefix} {i:D3} ü.bin");
            Files.Write(Path.Combine(data, relative), 500 + 37 * i, seed: Array.IndexOf(Hosts, host) * 1000 + i);
            return relative;
        }).ToArray();

    [Test]
    public async Task When_three_hosts_and_an_sftp_backup_host_run_Should_every_file_reach_every_replica_and_no_host_write_what_it_does_not_own()
    {
        await using var ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));
        var sftp = $"ssh://{ssh.User}@127.0.0.1:{ssh.Port}/backup";
        var sftpFolder = ssh.ReplicaFolder();
        var sftpTable = ssh.ReplicaTable();
        // The same paths on every host: its data, and a private backup folder (on exao1 the backup disk).
        var backup = Path.Combine(pipeline.Root, "backup");
        Directory.CreateDirectory(backup);
        foreach (var host in Hosts)
        {
            Directory.CreateDirectory(HostFolder(host, "data"));
            Directory.CreateDirectory(HostFolder(host, "backup"));
            Directory.CreateDirectory(MountOf(host) + pipeline.Data);
        }
        TestPipeline.Mark(HostFolder("exao1", "backup"));
        var configs = Hosts.ToDictionary(h => h, h => Configure(h, backup, sftp, sftpTable, ownsTheDisk: h == "exao1"));
        var written = Hosts.ToDictionary(h => h, h => WriteFiles(HostFolder(h, "data"), h, "before", 12).ToList());

        // exao1's inventory first, then exao2 and exao3, whose files reach the SFTP replica; exao1's disk waits for exao1.
        OnHost("exao1", backup, ["run", "Inventory", "--config", configs["exao1"]]);
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas") == 2, Timeout, "exao1's inventory registered its replicas");
        foreach (var host in new[] { "exao2", "exao3" })
            OnHost(host, backup, ["run", "Watcher", "Replicator", "--config", configs[host]]);
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from file_replicas") == 24, Timeout, "exao2's and exao3's files on the SFTP replica");

        var disk = $"exao1:{backup}";
        var (exit, listed) = await RunOnHostAsync("exao1", backup, "replica_list", "--config", configs["exao1"]);
        Assert.That(exit, Is.Zero, listed);
        TestContext.Progress.WriteLine("replica_list before exao1's replicator runs:\n" + listed);
        foreach (var host in new[] { "exao2", "exao3" })
            Assert.That(listed, Does.Contain($"UNSERVED: {host} -> {disk}: no running replicator consumes queue {Queues.Replicate(host, disk)}; 12 files"));
        Assert.That(listed, Does.Not.Contain($"-> {sftp}:"), "the SFTP replica's pairs are served by each host's own replicator");

        OnHost("exao1", backup, ["run", "Watcher", "Replicator", "--config", configs["exao1"]]);
        foreach (var host in Hosts)
            written[host].AddRange(WriteFiles(HostFolder(host, "data"), host, "live", 6));

        var table = await Eventually.Get<AuditTable>(async () => await AuditAsync(written, backup, sftp, sftpFolder), t => t?.Lost == 0, Timeout, "every file on both replicas");
        TestContext.Progress.WriteLine(table.Text);
        foreach (var host in new[] { "exao2", "exao3" })
            Assert.That(Directory.EnumerateFileSystemEntries(HostFolder(host, "backup")), Is.Empty, $"{host}'s private backup folder received nothing");
        (exit, listed) = await RunOnHostAsync("exao1", backup, "replica_list", "--config", configs["exao1"]);
        Assert.That(exit, Is.Zero, listed);
        Assert.That(listed, Does.Not.Contain("UNSERVED").And.Not.Contain("FAILED").And.Not.Contain("UNAVAILABLE"));
        (exit, var verified) = await RunOnHostAsync("exao1", backup, "verify", $"replica={backup}", "checksum=true", "--config", configs["exao1"]);
        Assert.That(exit, Is.Zero, verified);
        Assert.That(verified, Does.Contain("54 recorded copies checked (54 checksums); 0 missing, 0 different, 0 unrecorded"));
    }

    sealed record AuditTable(int Lost, string Text);

    /// <summary>Each file of each host on each replica: the same bytes, recorded at its version with their checksum.</summary>
    async Task<AuditTable> AuditAsync(Dictionary<string, List<string>> written, string backup, string sftp, string sftpFolder)
    {
        await using var connection = new NpgsqlConnection(pipeline.Connection);
        var rows = (await connection.QueryAsync<(string Replica, string Host, string Path, long Size, string Checksum)>("""
            select case when r.kind = 'local' then r.host || ':' || r.url else r.url end, fr.origin_host, fr.origin_path, fr.size_bytes, fr.checksum
              from file_replicas fr join replicas r on r.id = fr.replica_id
            """)).ToDictionary(r => (r.Replica, r.Host, r.Path));
        var replicas = new Dictionary<string, string> { [$"exao1:{backup}"] = HostFolder("exao1", "backup"), [sftp] = sftpFolder };
        var text = new StringBuilder("three-host audit | host | files | " + string.Join(" | ", replicas.Keys) + " | lost\n");
        var lost = 0;
        foreach (var host in Hosts)
        {
            var counts = new List<int>();
            var lostHere = 0;
            foreach (var (replica, folder) in replicas)
            {
                var good = 0;
                foreach (var relative in written[host])
                {
                    var origin = Path.Combine(pipeline.Data, relative);
                    var source = Path.Combine(HostFolder(host, "data"), relative);
                    var copy = folder + "/" + host + origin;
                    if (File.Exists(copy) && rows.TryGetValue((replica, host, origin), out var row) && row.Size == new FileInfo(source).Length
                        && Files.Checksum(copy) == Files.Checksum(source) && row.Checksum == Files.Checksum(source))
                        good++;
                    else
                        lostHere++;
                }
                counts.Add(good);
            }
            lost += lostHere;
            text.Append($"three-host audit | {host} | {written[host].Count} | {string.Join(" | ", counts)} | {lostHere}\n");
        }
        return new AuditTable(lost, text.ToString());
    }
}
