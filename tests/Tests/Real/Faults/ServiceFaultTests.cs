using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>The services themselves killed, stopped or starved of events while files flow.</summary>
[Order(7)] // a long fault scenario: started first (Parallelism.cs)
public sealed class ServiceFaultTests : FaultTest
{
    [Test]
    public async Task When_each_service_is_killed_in_turn_mid_stream_Should_lose_nothing()
    {
        const int count = 3_000;
        var backup = pipeline.Backup();
        pipeline.Configure([backup], pollInterval: "10s");
        await using var inventory = new Supervisor("inventory", () => pipeline.StartProcess("run", "Inventory"));
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas") == 1, TimeSpan.FromSeconds(60), "the inventory started");
        await using var replicator = new Supervisor("replicator", () => pipeline.StartProcess("run", "Replicator"));
        await using var watcher = new Supervisor("watcher", () => pipeline.StartProcess("run", "Watcher"));
        // Files written before the watcher is up are found by its first scan; no wait is needed.

        var victims = new Dictionary<int, Supervisor> { [count / 4] = watcher, [count / 2] = inventory, [3 * count / 4] = replicator };
        var files = await WriteFilesAsync(pipeline.Data, count, TimeSpan.FromMilliseconds(100), i =>
        {
            if (victims.TryGetValue(i, out var victim))
            {
                TestContext.Progress.WriteLine($"SIGKILL {victim.Name} after file {i}");
                victim.Kill();
            }
            return Task.CompletedTask;
        });

        var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count));
        Assert.That(watcher.Restarts + inventory.Restarts + replicator.Restarts, Is.EqualTo(3), "each killed once and restarted once");
        Record("watcher, inventory, replicator SIGKILLed in turn", audited, "3 process kills, restarted by a supervisor", null, files.Count);
    }

    [Test]
    public async Task When_the_watcher_is_down_while_files_are_written_changed_and_deleted_Should_catch_up_after_it_restarts()
    {
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup]);
        var core = await pipeline.StartAsync(settings, PipelineServices.Inventory | PipelineServices.Replicator);
        var watcher = await pipeline.StartAsync(settings, PipelineServices.Watcher);
        var files = await WriteFilesAsync(pipeline.Data, 600, TimeSpan.Zero);
        await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });

        await pipeline.StopAsync(watcher);
        var deleted = files.Where((_, i) => i % 6 == 0).ToArray();
        var changed = files.Where((_, i) => i % 6 == 1).ToArray();
        foreach (var path in deleted)
            File.Delete(path);
        foreach (var path in changed)
            File.AppendAllText(path, "appended while nobody watched");
        var added = await WriteFilesAsync(pipeline.Data, 200, TimeSpan.Zero, prefix: "new");

        await pipeline.StartAsync(settings, PipelineServices.Watcher);
        var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count - deleted.Length + added.Count));
        foreach (var path in deleted.Take(20))
        {
            Assert.That((await pipeline.OriginAsync(path))!.MissingSince, Is.Not.Null, $"{path} is marked missing");
            Assert.That(File.Exists(TestPipeline.TargetOf(backup, path)), Is.True, $"the backup of {path} stays");
        }
        var copies = core.Services.GetRequiredService<ReplicaCopier>().Copies;
        Assert.That(copies, Is.EqualTo(files.Count + changed.Length + added.Count), "each version copied once");
        Record("watcher down: writes, changes, deletes", audited, $"watcher stopped; {deleted.Length} deleted, {changed.Length} changed, {added.Count} added", copies, files.Count + changed.Length + added.Count);
    }

    [Test]
    [NonParallelizable] // lowers the machine's inotify queue limit while its watcher starts: another watcher starting then would overflow
    public async Task When_inotify_overflows_Should_the_poll_recover_every_change()
    {
        const string queueLimit = "/proc/sys/fs/inotify/max_queued_events";
        string original;
        try
        {
            original = File.ReadAllText(queueLimit).Trim();
            // Read when an inotify instance is made: the watcher starting now gets a queue of 16 events.
            File.WriteAllText(queueLimit, "16");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Assert.Ignore($"{queueLimit} cannot be lowered here ({e.Message}); the overflow needs it");
            return;
        }
        var backup = pipeline.Backup();
        Microsoft.Extensions.Hosting.IHost host;
        try
        {
            host = await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "5s"), PipelineServices.All);
        }
        finally
        {
            File.WriteAllText(queueLimit, original);
        }
        var files = await WriteFilesAsync(pipeline.Data, 3_000, TimeSpan.Zero);

        var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
        Assert.That(audited, Is.EqualTo(files.Count));
        var watcher = host.Services.GetRequiredService<Watcher.FileWatchService>();
        Assert.That(watcher.MissedByLiveWatcher, Is.GreaterThan(0), "the overflow lost events, and the poll found them");
        Record("inotify overflow (queue of 16 events)", audited, $"overflow; {watcher.MissedByLiveWatcher} changes caught by the poll",
            host.Services.GetRequiredService<ReplicaCopier>().Copies, files.Count);
    }

    [Test]
    [NonParallelizable] // measures the gaps between refreshes against max_interval
    public async Task When_a_file_is_appended_every_100_ms_Should_refresh_its_replica_every_max_interval_with_versions_really_copied()
    {
        var backup = pipeline.Backup();
        var maxInterval = TimeSpan.FromSeconds(1);
        await pipeline.StartAsync(pipeline.Configure([backup], settle: "200ms", maxInterval: "1s"), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "telem", "dm.bintel");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var seen = new List<(DateTime At, long Size, string? Checksum)>();
        var random = new Random(7);
        var record = new byte[4096];
        await using (var writer = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read))
        {
            var end = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < end)
            {
                random.NextBytes(record);
                await writer.WriteAsync(record);
                await writer.FlushAsync();
                if (await pipeline.ReplicaAsync(backup, path) is { } row && (seen.Count == 0 || seen[^1].Size != row.SizeBytes))
                    seen.Add((DateTime.UtcNow, row.SizeBytes, row.Checksum));
                await Task.Delay(100);
            }
        }
        await pipeline.ReplicatedAsync(backup, path);
        Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));

        // Refreshed while it grew: no gap between recorded versions much beyond max_interval.
        Assert.That(seen, Has.Count.GreaterThanOrEqualTo(10), "versions recorded while the file grew");
        var gaps = seen.Zip(seen.Skip(1), (a, b) => b.At - a.At).ToArray();
        Assert.That(gaps.Max(), Is.LessThan(maxInterval + TimeSpan.FromSeconds(1.5)), string.Join(", ", gaps.Select(g => g.TotalMilliseconds.ToString("0"))));
        // Every recorded version was really copied: its checksum is that of the file's first Size bytes.
        var bytes = File.ReadAllBytes(path);
        foreach (var (_, size, checksum) in seen)
        {
            var hash = new System.IO.Hashing.XxHash3();
            hash.Append(bytes.AsSpan(0, (int)size));
            Assert.That(checksum, Is.EqualTo("xxh3:" + Convert.ToHexStringLower(hash.GetCurrentHash())), $"the version of {size} bytes");
        }
        TestContext.Progress.WriteLine($"fault-audit | bintel appended every 100 ms for 20 s | 1 | {seen.Count} versions, max gap {gaps.Max().TotalMilliseconds:0} ms | 0 | 0");
    }
}
