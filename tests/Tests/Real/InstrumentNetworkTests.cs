using System.Text;
using Dapper;
using Npgsql;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The instrument network (<see cref="InstrumentNetwork"/>): each host in network, mount and UTS
/// namespaces of its own, reaching the broker, the database and the SFTP backup host over its own
/// link. exao1 runs the inventory and owns the backup disk; every host writes its own files to
/// the SFTP replica.
/// </summary>
public sealed class InstrumentNetworkTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);
    static string[] Hosts => InstrumentNetwork.Hosts;

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
        await using var network = await InstrumentNetwork.StartAsync(pipeline);
        var written = Hosts.ToDictionary(h => h, h => WriteFiles(network.HostFolder(h, "data"), h, "before", 12).ToList());

        // exao1's inventory first, then exao2 and exao3, whose files reach the SFTP replica; exao1's disk waits for exao1.
        network.OnHost("exao1", "run", "Inventory");
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas") == 2, Timeout, "exao1's inventory registered its replicas");
        foreach (var host in new[] { "exao2", "exao3" })
            network.OnHost(host, "run", "Watcher", "Replicator");
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from file_replicas") == 24, Timeout, "exao2's and exao3's files on the SFTP replica");

        var (exit, listed) = await network.RunOnHostAsync("exao1", "replica_list");
        Assert.That(exit, Is.Zero, listed);
        TestContext.Progress.WriteLine("replica_list before exao1's replicator runs:\n" + listed);
        foreach (var host in new[] { "exao2", "exao3" })
            Assert.That(listed, Does.Contain($"UNSERVED: {host} -> {network.Disk}: no running replicator consumes queue {Queues.Replicate(host, network.Disk)}; 12 files"));
        Assert.That(listed, Does.Not.Contain($"-> {network.Sftp}:"), "the SFTP replica's pairs are served by each host's own replicator");

        network.OnHost("exao1", "run", "Watcher", "Replicator");
        foreach (var host in Hosts)
            written[host].AddRange(WriteFiles(network.HostFolder(host, "data"), host, "live", 6));

        var table = await Eventually.Get<AuditTable>(async () => await AuditAsync(network, written), t => t?.Lost == 0, Timeout, "every file on both replicas");
        TestContext.Progress.WriteLine(table.Text);
        foreach (var host in new[] { "exao2", "exao3" })
            Assert.That(Directory.EnumerateFileSystemEntries(network.HostFolder(host, "backup")), Is.Empty, $"{host}'s private backup folder received nothing");
        (exit, listed) = await network.RunOnHostAsync("exao1", "replica_list");
        Assert.That(exit, Is.Zero, listed);
        Assert.That(listed, Does.Not.Contain("UNSERVED").And.Not.Contain("FAILED").And.Not.Contain("UNAVAILABLE"));
        (exit, var verified) = await network.RunOnHostAsync("exao1", "verify", $"replica={network.Backup}", "checksum=true");
        Assert.That(exit, Is.Zero, verified);
        Assert.That(verified, Does.Contain("54 recorded copies checked (54 checksums); 0 missing, 0 different, 0 unrecorded"));
        foreach (var host in Hosts)
            Assert.That(network.Link(host).PacketsSent(), Is.GreaterThan(0), $"{host}'s traffic crossed its own link");
    }

    sealed record AuditTable(int Lost, string Text);

    /// <summary>Each file of each host on each replica: the same bytes, recorded at its version with their checksum.</summary>
    async Task<AuditTable> AuditAsync(InstrumentNetwork network, Dictionary<string, List<string>> written)
    {
        await using var connection = new NpgsqlConnection(pipeline.Connection);
        var rows = (await connection.QueryAsync<(string Replica, string Host, string Path, long Size, string Checksum)>("""
            select case when r.kind = 'local' then r.host || ':' || r.url else r.url end, fr.origin_host, fr.origin_path, fr.size_bytes, fr.checksum
              from file_replicas fr join replicas r on r.id = fr.replica_id
            """)).ToDictionary(r => (r.Replica, r.Host, r.Path));
        var text = new StringBuilder("three-host audit | host | files | " + string.Join(" | ", network.Replicas.Keys) + " | lost\n");
        var lost = 0;
        foreach (var host in Hosts)
        {
            var counts = new List<int>();
            var lostHere = 0;
            foreach (var (replica, folder) in network.Replicas)
            {
                var good = 0;
                foreach (var relative in written[host])
                {
                    var origin = Path.Combine(pipeline.Data, relative);
                    var source = Path.Combine(network.HostFolder(host, "data"), relative);
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
