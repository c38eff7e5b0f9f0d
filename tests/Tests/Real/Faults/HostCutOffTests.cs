using System.Diagnostics;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>
/// One instrument host cut off the network (its veth down) for a minute while it goes on writing;
/// the other hosts go on being backed up, and when the link returns the host's backlog drains.
/// </summary>
[Order(2)] // a long fault scenario: started first (Parallelism.cs)
public sealed class HostCutOffTests : FaultTest
{
    /// <summary>A minute; XTELEMDB_CUT_SECONDS sets another length (past the broker's heartbeat timeout, the bus watchdog's grace).</summary>
    static readonly TimeSpan CutLength = TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("XTELEMDB_CUT_SECONDS"), out var s) ? s : 60);
    const string CutHost = "exao3";

    /// <summary>
    /// What an instrument host writes, at a small scale: a telemetry file appended four times a
    /// second and rotated at 256 KiB, and a new small file every second.
    /// </summary>
    sealed class Writer(string data, string host)
    {
        readonly List<(string Path, DateTime Created)> created = [];

        /// <summary>The files it created since then, as the test reads them.</summary>
        public IReadOnlyList<string> Since(DateTime since)
        {
            lock (created)
                return [.. created.Where(c => c.Created >= since).Select(c => c.Path)];
        }

        void Add(string path)
        {
            lock (created)
                created.Add((path, DateTime.UtcNow));
        }

        public async Task RunAsync(CancellationToken stop)
        {
            var telem = Path.Combine(data, "telem", $"{host}_tel");
            var logs = Path.Combine(data, "logs", $"{host}_log");
            Directory.CreateDirectory(telem);
            Directory.CreateDirectory(logs);
            var random = new Random(host.GetHashCode(StringComparison.Ordinal));
            var chunk = new byte[4096];
            string? bintel = null;
            for (var tick = 0; !stop.IsCancellationRequested; tick++)
            {
                if (bintel is null || new FileInfo(bintel).Length >= 256 * 1024)
                {
                    bintel = Path.Combine(telem, $"dev_{DateTime.UtcNow:yyyyMMddHHmmssfffffff}.bintel");
                    Add(bintel);
                }
                random.NextBytes(chunk);
                await using (var stream = new FileStream(bintel, FileMode.Append))
                    await stream.WriteAsync(chunk, CancellationToken.None);
                if (tick % 4 == 0)
                {
                    var log = Path.Combine(logs, $"log_{tick / 4:D5}.binlog");
                    Add(log); // counted before it is written: a file counted after a moment was written after it
                    Files.Write(log, 1024 + random.Next(7 * 1024), seed: tick);
                }
                await Task.Delay(250, stop).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    [Test]
    public async Task When_a_host_is_cut_off_for_a_minute_while_it_writes_Should_the_others_be_backed_up_meanwhile_and_its_backlog_drain_when_the_link_returns()
    {
        await using var network = await InstrumentNetwork.StartAsync(pipeline);
        var hosts = InstrumentNetwork.Hosts;
        // As systemd or compose would: a service that exits (the bus watchdog's exit 3) is started again.
        var services = new List<Supervisor> { new("exao1 inventory", () => network.OnHost("exao1", "run", "Inventory")) };
        try
        {
            await Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas") == 2, ConvergeTimeout, "exao1's inventory registered its replicas");
            services.AddRange(hosts.Select(h => new Supervisor($"{h} watcher and replicator", () => network.OnHost(h, "run", "Watcher", "Replicator"))));
            var writers = hosts.ToDictionary(h => h, h => new Writer(network.HostFolder(h, "data"), h));
            using var stopWriting = new CancellationTokenSource();
            var writing = writers.Values.Select(w => w.RunAsync(stopWriting.Token)).ToArray();

            // Every host's files flow before the cut.
            foreach (var host in hosts)
                await Eventually.True(async () => await RecordedAsync(network, host, writers[host].Since(DateTime.MinValue)) > 0, ConvergeTimeout, $"{host}'s first files recorded on both replicas");

            var link = network.Link(CutHost);
            link.Cut();
            // Once the link is down: a file written while 'ip link' ran may still have been reported.
            var cutAt = DateTime.UtcNow;
            var sentBefore = link.PacketsSent();
            TestContext.Progress.WriteLine($"{CutHost} cut off at {cutAt:O} ({link.Veth} down)");
            foreach (var host in hosts.Where(h => h != CutHost))
                // On a loaded machine this may take longer than the cut's minute: the cut lasts until it is seen.
                await Eventually.True(async () => await RecordedAsync(network, host, writers[host].Since(cutAt)) > 0, ConvergeTimeout, $"{host}'s files written during the cut recorded on both replicas meanwhile");
            // What the operator sees near the end of the cut.
            await Task.Delay(TimeSpan.FromTicks(Math.Max(0, (cutAt + CutLength - TimeSpan.FromSeconds(15) - DateTime.UtcNow).Ticks)));
            var (_, duringTheCut) = await network.RunOnHostAsync("exao1", "replica_list", "--queues");
            TestContext.Progress.WriteLine($"replica_list --queues on exao1, {(DateTime.UtcNow - cutAt).TotalSeconds:0} s into the cut:\n{duringTheCut}");
            await Task.Delay(TimeSpan.FromTicks(Math.Max(0, (cutAt + CutLength - DateTime.UtcNow).Ticks)));
            // The cut was real: nothing the cut host wrote meanwhile reached the inventory, and nothing crossed its link.
            Assert.That(await RecordedAsync(network, CutHost, writers[CutHost].Since(cutAt), anyReplica: true), Is.Zero, $"{CutHost}'s files written during the cut are recorded nowhere yet");
            Assert.That(link.PacketsSent(), Is.EqualTo(sentBefore), $"nothing crossed {link.Veth} while it was down");

            link.Restore();
            var restored = Stopwatch.StartNew();
            var cutFor = DateTime.UtcNow - cutAt;
            TestContext.Progress.WriteLine($"{CutHost}'s link restored after {cutFor}");
            await stopWriting.CancelAsync();
            await Task.WhenAll(writing);
            var duringCut = writers[CutHost].Since(cutAt).Count;

            var report = await new Audit(pipeline.Connection).PassesAsync(network.Origins, network.Replicas, ConvergeTimeout, watchedAs: network.WatchedAs);
            var drain = restored.Elapsed;
            foreach (var replica in network.Replicas.Keys)
            {
                var (exit, output) = await network.RunOnHostAsync("exao1", "verify", $"replica={replica}", "checksum=true");
                Assert.That(exit, Is.Zero, $"verify {replica}: {output}");
            }
            var (listExit, listed) = await network.RunOnHostAsync("exao1", "replica_list");
            Assert.That(listExit, Is.Zero, listed);
            Assert.That(listed, Does.Not.Contain("FAILED").And.Not.Contain("UNSERVED"));
            foreach (var queue in (await pipeline.Management.QueuesAsync(pipeline.Name)).Select(q => q["name"]!.GetValue<string>()).Where(n => n.EndsWith("_error", StringComparison.Ordinal)))
                Assert.That(await pipeline.Management.PeekAsync(pipeline.Name, queue, 1), Is.Empty, $"{queue} holds nothing: no message failed for good during the cut");
            await PrintAuditTableAsync(network, writers, cutAt);
            var parts = network.Replicas.Values.Sum(folder => Directory.EnumerateFiles(folder, "*.xtelemdb-part", Audit.WithoutLinks).Count());
            TestContext.Progress.WriteLine($"host cut-off: {parts} part files left on the replicas (copies cut short; verify lists them after a day)");
            var restarts = services.Select(s => $"{s.Name}: {s.Restarts} restarts (exit codes {string.Join(", ", s.ExitCodes)})");
            TestContext.Progress.WriteLine($"host cut-off: {CutHost} off for {cutFor.TotalSeconds:0} s, {duringCut} files of it written meanwhile; backlog drained {drain.TotalSeconds:0.0} s after the link returned; {string.Join("; ", restarts)}");
            Record("a host cut off the network for a minute", report.Files, $"{CutHost}'s veth down for {cutFor.TotalSeconds:0} s", null, 0);
        }
        finally
        {
            foreach (var service in services)
                await service.DisposeAsync();
        }
    }

    /// <summary>How many of the host's files are recorded on both replicas (or, with anyReplica, on either), at any version.</summary>
    async Task<long> RecordedAsync(InstrumentNetwork network, string host, IReadOnlyList<string> files, bool anyReplica = false)
    {
        var created = files.Select(f => network.WatchedAs[host] + f[network.Origins[host].Length..]).ToArray();
        if (created.Length == 0)
            return 0;
        await using var connection = new Npgsql.NpgsqlConnection(pipeline.Connection);
        return await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection, """
            select count(*) from (
              select origin_path from file_replicas where origin_host = @Host and origin_path = any(@Paths)
               group by origin_path having count(distinct replica_id) >= @Replicas) recorded
            """, new { Host = host, Paths = created, Replicas = anyReplica ? 1 : 2 });
    }

    /// <summary>Per host: the files audited, those written during the cut, their copies recorded on each replica, and what the audit found.</summary>
    async Task PrintAuditTableAsync(InstrumentNetwork network, Dictionary<string, Writer> writers, DateTime cutAt)
    {
        var lines = new List<string> { $"host cut-off audit | host | files | written during the cut | {string.Join(" | ", network.Replicas.Keys)} | problems" };
        foreach (var host in InstrumentNetwork.Hosts)
        {
            var origins = new Dictionary<string, string> { [host] = network.Origins[host] };
            var report = await new Audit(pipeline.Connection).RunAsync(origins, network.Replicas, watchedAs: network.WatchedAs);
            var copies = new List<long>();
            foreach (var replica in network.Replicas.Keys)
                copies.Add(await pipeline.CountAsync($"""
                    select count(*) from file_replicas fr join replicas r on r.id = fr.replica_id
                     where fr.origin_host = '{host}' and (case when r.kind = 'local' then r.host || ':' || r.url else r.url end) = '{replica}'
                    """));
            lines.Add($"host cut-off audit | {host} | {report.Files} | {writers[host].Since(cutAt).Count} | {string.Join(" | ", copies)} | {report.Problems.Count}");
        }
        TestContext.Progress.WriteLine(string.Join("\n", lines));
    }
}
