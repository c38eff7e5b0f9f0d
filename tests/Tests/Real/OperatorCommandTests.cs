using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>The operator commands, run as the xtelemdb executable against a running pipeline.</summary>
[Order(1)] // a long fixture of the fast tier: started first (Parallelism.cs)
public sealed class OperatorCommandTests : PipelineTest
{
    static readonly TimeSpan Timeout = Eventually.Patience;
    /// <summary>A backup made by an older tool: host folders, nested folders, awkward names, and a symlink out.</summary>
    string MakeOldBackup(out IReadOnlyList<string> files)
    {
        var backup = pipeline.Backup("old-backup");
        var list = new List<string>();
        foreach (var host in new[] { "exao1", "exao2", "exao3" })
        {
            for (var i = 0; i < 40; i++)
            {
                var file = Path.Combine(backup, host, "opt", "MagAOX", i % 2 == 0 ? "telem" : "rawimages", $"night {i % 4}", $"f-{i} ü'\".dat");
                Files.Write(file, 100 + i, seed: i);
                list.Add(file);
            }
        }
        Directory.CreateSymbolicLink(Path.Combine(backup, "exao1", "escape"), "/etc");
        files = list;
        return backup;
    }

    [Test]
    public async Task When_an_old_backup_is_imported_Should_record_it_copy_nothing_and_change_nothing_the_second_time()
    {
        var backup = MakeOldBackup(out var files);
        // The pipeline runs with no replica in its TOML file: the replicator learns of this one from the database.
        var host = await pipeline.StartAsync(pipeline.Configure([]), PipelineServices.All);

        var (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={backup}", "import_origins=true");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain($"Replica {TestPipeline.Named(backup)} added"));
        Assert.That(output, Does.Contain("Imported 120 files: 120 new origins, 120 new replica records."));
        Assert.That(output, Does.Contain($"{backup}/exao1/escape: a symlink, not followed"));
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins where origin_host in ('exao1', 'exao2', 'exao3')"), Is.EqualTo(120));
        var sample = await pipeline.CountAsync($"""
            select count(*) from file_origins where origin_host = 'exao2' and origin_path = '/opt/MagAOX/rawimages/night 1/f-1 ü''".dat' and size_bytes = 101
            """);
        Assert.That(sample, Is.EqualTo(1), "the origin path is the backup path with <prefix>/<host> replaced by /");

        var imported = await pipeline.RunAsync("add-replica", "--prefix", backup, "--import-origins", "--json");
        Assert.That(imported.ExitCode, Is.Zero, imported.Output);
        using (var json = JsonDocument.Parse(imported.StandardOutput))
        {
            Assert.That(json.RootElement.GetProperty("added").GetBoolean(), Is.False);
            Assert.That(json.RootElement.GetProperty("imported").GetProperty("originsAdded").GetInt64(), Is.Zero);
            Assert.That(json.RootElement.GetProperty("imported").GetProperty("replicasAdded").GetInt64(), Is.Zero);
        }

        (exit, output) = await pipeline.RunAsync("sync", "--stall-timeout", "20s");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("In sync: 0 files copied."));
        Assert.That(host.Services.GetRequiredService<ReplicaCopier>().Copies, Is.Zero, "nothing already backed up is copied again");

        var listed = await pipeline.RunAsync("replica_list", "--json");
        Assert.That(listed.ExitCode, Is.Zero, listed.Output);
        using (var json = JsonDocument.Parse(listed.StandardOutput))
        {
            var row = json.RootElement.EnumerateArray().Single(r => r.GetProperty("url").GetString() == backup);
            Assert.That(row.GetProperty("filesInSync").GetInt64(), Is.EqualTo(120));
            Assert.That(row.GetProperty("filesBehind").GetInt64(), Is.Zero);
        }
    }

    [Test]
    public async Task When_a_replica_is_added_while_the_pipeline_runs_Should_back_fill_it_and_list_it()
    {
        var first = pipeline.Backup("first");
        await pipeline.StartAsync(pipeline.Configure([first]), PipelineServices.All);
        var paths = Enumerable.Range(0, 10).Select(i => Path.Combine(pipeline.Data, $"n{i}.fits")).ToArray();
        foreach (var path in paths)
            Files.Write(path, 5000);
        foreach (var path in paths)
            await pipeline.ReplicatedAsync(first, path);

        var second = pipeline.Backup("second");
        var (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={second}");
        Assert.That(exit, Is.Zero, output);
        foreach (var path in paths)
            Files.AssertSameFile(path, (await pipeline.ReplicatedAsync(second, path)).ReplicaPath);

        (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={second}");
        Assert.That(output, Does.Contain("is already registered").And.Contain("nothing changed"));

        (exit, output) = await pipeline.RunAsync("replica_list");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain(TestPipeline.Named(first)).And.Contain(TestPipeline.Named(second)));
        Assert.That(output, Does.Not.Contain("UNSERVED"), "this host's replicator serves both");
        Assert.That(output.Split('\n').Single(l => l.StartsWith(TestPipeline.Named(second), StringComparison.Ordinal)), Does.Contain("\t10\t0\t0 B\t-\t"));
    }

    [Test]
    public async Task When_queues_are_listed_Should_name_each_pairs_queue_with_its_waiting_requests_consumers_and_error_queue()
    {
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup]);
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory);
        var queue = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));
        foreach (var i in Enumerable.Range(0, 3))
            Files.Write(Path.Combine(pipeline.Data, $"q{i}.dat"), 100);
        // A file may be reported twice (its event and the scan): three files, whatever the requests.
        await Eventually.True(async () => (await pipeline.Management.QueuedRequestsAsync(pipeline.Name, queue)).Select(r => r["originPath"]!.GetValue<string>()).Distinct().Count() == 3,
            Eventually.Patience, "three files requested");

        // The watcher reports the three in one list or more: as many messages wait, one per list.
        var messages = (await pipeline.Management.PeekAsync(pipeline.Name, queue, 10)).Count;
        var requests = (await pipeline.Management.QueuedRequestsAsync(pipeline.Name, queue)).Count;
        var pair = await PairAsync();
        Assert.That((pair.Queue, pair.Waiting, pair.Consumers, pair.Errors, pair.FilesBehind), Is.EqualTo((queue, (long)messages, 0L, 0L, 3L)), "waiting, and nobody serves it yet");

        // The disk unmounted: each copy fails for good into the error queue, which the listing counts.
        File.Delete(Path.Combine(backup, ReplicaMarker.FileName));
        await pipeline.StartAsync(settings, PipelineServices.Replicator);
        // Each request of a list fails alone, so each lands in the error queue by itself.
        await Eventually.True(async () => (await PairAsync()).Errors == requests, Eventually.Patience, $"{requests} requests in the error queue");
        pair = await PairAsync();
        Assert.That((pair.Waiting, pair.Consumers), Is.EqualTo((0L, 1L)));

        var (exit, output) = await pipeline.RunAsync("replica_list", "queues=true");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain($"Virtual host \"{pipeline.Name}\""));
        Assert.That(output.Split('\n').Single(l => l.StartsWith(TestPipeline.Host + "\t", StringComparison.Ordinal)),
            Is.EqualTo($"{TestPipeline.Host}\t{TestPipeline.Named(backup)}\t{queue}\t0\t1\t{requests}\t3"));
        Assert.That(output, Does.Contain($"{Queues.ResyncRequested}\t0\t1"), "the inventory's queues, with their consumer");

        async Task<(string Queue, long Waiting, long Consumers, long Errors, long FilesBehind)> PairAsync()
        {
            var listed = await pipeline.RunAsync("replica_list", "--queues", "--json");
            Assert.That(listed.ExitCode, Is.Zero, listed.Output);
            using var json = JsonDocument.Parse(listed.StandardOutput);
            Assert.That(json.RootElement.GetProperty("virtualHost").GetString(), Is.EqualTo(pipeline.Name));
            var row = json.RootElement.GetProperty("pairs").EnumerateArray().Single();
            return (row.GetProperty("queue").GetString()!, row.GetProperty("waiting").GetInt64(), row.GetProperty("consumers").GetInt64(),
                row.GetProperty("errors").GetInt64(), row.GetProperty("filesBehind").GetInt64());
        }
    }

    [Test]
    public async Task When_a_replica_file_is_truncated_deleted_or_unrecorded_Should_verify_report_each_and_fix_what_it_can()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        var paths = Enumerable.Range(0, 3).Select(i => Path.Combine(pipeline.Data, $"v{i}.dat")).ToArray();
        foreach (var path in paths)
            Files.Write(path, 8192, seed: 5);
        foreach (var path in paths)
            await pipeline.ReplicatedAsync(backup, path);

        var (exit, output) = await pipeline.RunAsync("verify", $"replica={backup}", "checksum=true");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("3 recorded copies checked (3 checksums); 0 missing, 0 different, 0 unrecorded"));

        var truncated = TestPipeline.TargetOf(backup, paths[0]);
        var mtime = File.GetLastWriteTimeUtc(truncated);
        await using (var stream = new FileStream(truncated, FileMode.Open))
            stream.SetLength(100);
        File.SetLastWriteTimeUtc(truncated, mtime);
        var corrupted = TestPipeline.TargetOf(backup, paths[1]);
        var bytes = await File.ReadAllBytesAsync(corrupted);
        bytes[10] ^= 0xff;
        await File.WriteAllBytesAsync(corrupted, bytes);
        File.SetLastWriteTimeUtc(corrupted, File.GetLastWriteTimeUtc(paths[1])); // same size and mtime: only the checksum tells
        var deleted = TestPipeline.TargetOf(backup, paths[2]);
        File.Delete(deleted);
        var stray = Path.Combine(backup, "exao-test", "nobody-recorded-me.txt");
        Files.Write(stray, 10);

        (exit, output) = await pipeline.RunAsync("verify", $"replica={backup}", "checksum=true");
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("1 missing, 2 different, 1 unrecorded"));
        Assert.That(output, Does.Contain($"{truncated}\tdifferent: recorded 8192 bytes"));
        Assert.That(output, Does.Contain($"{corrupted}\tdifferent: checksum recorded xxh3:"));
        Assert.That(output, Does.Contain($"{deleted}\tmissing"));
        Assert.That(output, Does.Contain($"{stray}\tunrecorded"));

        (exit, output) = await pipeline.RunAsync("verify", $"replica={backup}", "checksum=true", "fix=true");
        Assert.That(output, Does.Contain("3 copies requested"));
        await Eventually.True(() => File.Exists(deleted) && new FileInfo(truncated).Length == 8192 && Files.Checksum(corrupted) == Files.Checksum(paths[1]),
            Timeout, "the three copies restored");
        var verified = await pipeline.RunAsync("verify", $"replica={backup}", "checksum=true", "--json");
        Assert.That(verified.ExitCode, Is.EqualTo(1), "the unrecorded file stays: backups never delete");
        using var json = JsonDocument.Parse(verified.StandardOutput);
        var report = json.RootElement[0];
        Assert.That((report.GetProperty("missing").GetInt64(), report.GetProperty("different").GetInt64(), report.GetProperty("unrecorded").GetInt64()),
            Is.EqualTo((0L, 0L, 1L)));
        Assert.That(File.Exists(stray), Is.True);
    }

    [Test]
    public async Task When_a_replica_is_removed_Should_stop_copying_to_it_keep_its_files_and_purge_only_when_confirmed()
    {
        var backup = pipeline.Backup();
        var other = pipeline.Backup("other");
        await pipeline.StartAsync(pipeline.Configure([other]), PipelineServices.All);
        Assert.That((await pipeline.RunAsync("add_replica", $"prefix={backup}")).ExitCode, Is.Zero);
        var before = Path.Combine(pipeline.Data, "before.dat");
        Files.Write(before, 1000);
        await pipeline.ReplicatedAsync(backup, before);

        var (exit, output) = await pipeline.RunAsync("remove_replica", $"replica={backup}");
        Assert.That(exit, Is.Zero, output);
        var queue = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));
        await Eventually.True(async () => (await pipeline.Management.PrefetchCountsAsync(pipeline.Name, queue)).Count == 0, Timeout, "the replicator to stop consuming its queue");
        var after = Path.Combine(pipeline.Data, "after.dat");
        Files.Write(after, 1000);
        await pipeline.ReplicatedAsync(other, after);
        // The inventory asked for the copies of "after" at once: a request for the removed replica would wait in its queue, unconsumed.
        Assert.That(await pipeline.Management.PeekAsync(pipeline.Name, queue), Is.Empty, "nothing more is asked of it");
        Assert.That(File.Exists(TestPipeline.TargetOf(backup, after)), Is.False, "nothing more is copied to it");
        Assert.That(await pipeline.ReplicaAsync(backup, before), Is.Not.Null, "its records stay");

        (exit, output) = await pipeline.RunAsync("remove_replica", $"replica={backup}", "--purge");
        Assert.That(exit, Is.EqualTo(2), output);
        Assert.That(output, Does.Contain("not confirmed: nothing changed"));
        Assert.That(await pipeline.ReplicaAsync(backup, before), Is.Not.Null);

        (exit, output) = await pipeline.RunAsync("remove_replica", $"replica={backup}", "--purge", "--yes");
        Assert.That(exit, Is.Zero, output);
        Assert.That(await pipeline.CountAsync($"select count(*) from replicas where url = '{backup}'"), Is.Zero);
        Assert.That(File.Exists(TestPipeline.TargetOf(backup, before)), Is.True, "no file on the replica is ever deleted");
    }

    [Test]
    public async Task When_a_back_fill_announcement_is_lost_or_the_inventory_restarts_Should_add_replica_mend_it_and_a_removal_hold()
    {
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup]);
        var inventory = await pipeline.StartAsync(settings, PipelineServices.Inventory);
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Replicator);
        var path = Path.Combine(pipeline.Data, "b.dat");
        Files.Write(path, 1000);
        await pipeline.ReplicatedAsync(backup, path);

        // A second replica is added while the inventory is down, and its announcement is lost.
        await pipeline.StopAsync(inventory);
        var late = pipeline.Backup("late");
        var (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={late}");
        Assert.That(exit, Is.Zero, output);
        await Eventually.True(async () => (await pipeline.Management.PeekAsync(pipeline.Name, "backfill-replica")).Count == 1, Timeout, "the announcement queued");
        await pipeline.Management.PurgeAsync(pipeline.Name, "backfill-replica");
        inventory = await pipeline.StartAsync(settings, PipelineServices.Inventory);

        (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={late}");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("is already registered").And.Contain("whatever it lacks is asked for again"));
        Files.AssertSameFile(path, (await pipeline.ReplicatedAsync(late, path)).ReplicaPath);

        // A replica of the TOML file that an operator removed stays removed when the inventory starts again.
        Assert.That((await pipeline.RunAsync("remove_replica", $"replica={backup}")).ExitCode, Is.Zero);
        await pipeline.StopAsync(inventory);
        await pipeline.StartAsync(settings, PipelineServices.Inventory);
        await Eventually.True(async () => (await pipeline.Management.PrefetchCountsAsync(pipeline.Name, "file-changed")).Count > 0, Timeout, "the inventory consuming again");
        Assert.That(await pipeline.CountAsync($"select count(*) from replicas where url = '{backup}' and enabled"), Is.Zero, "still disabled");
    }

    [Test]
    public async Task When_a_copy_fails_Should_sync_exit_non_zero_naming_the_file_and_why()
    {
        var small = pipeline.Backup("small");
        Shell.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small);
        TestPipeline.Mark(small);
        try
        {
            var settings = pipeline.Configure([small]);
            await pipeline.StartAsync(settings, PipelineServices.Inventory | PipelineServices.Replicator);
            var fits = Path.Combine(pipeline.Data, "fits.dat");
            var big = Path.Combine(pipeline.Data, "too-big.dat");
            Files.Write(fits, 1000);
            Files.Write(big, 3 << 20);
            var watcher = await pipeline.StartAsync(settings, PipelineServices.Watcher);
            await Eventually.True(async () => await pipeline.OriginAsync(big) is not null, Timeout, "the files known to the inventory");
            await pipeline.StopAsync(watcher);

            var (exit, output) = await pipeline.RunAsync("sync", $"replica={small}", "--stall-timeout", "30s");
            Assert.That(exit, Is.EqualTo(1), output);
            Assert.That(output, Does.Contain("Not in sync: 1 files"));
            Assert.That(output, Does.Contain(big).And.Contain($"replica {TestPipeline.Named(small)} is full"));
            Assert.That(File.Exists(TestPipeline.TargetOf(small, fits)), Is.True, "what fits was copied");
        }
        finally
        {
            Shell.Run("umount", "-l", small);
        }
    }

    [Test]
    public async Task When_the_broker_is_down_Should_verify_a_replica_all_the_same_since_only_a_fix_sends()
    {
        var backup = pipeline.Backup();
        Files.Write(Path.Combine(backup, "exao1", "opt", "MagAOX", "telem", "a.bintel"), 100);
        pipeline.Configure([]);
        var (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={backup}", "import_origins=true");
        Assert.That(exit, Is.Zero, output);

        // Nothing listens on port 1: a command that started a bus would give up on it and fail (after the bus watchdog's minute of grace).
        var settings = pipeline.Configure([], broker: new Uri("amqp://127.0.0.1:1/"));
        (exit, output) = await pipeline.RunAsync("verify", $"replica={backup}", "checksum=true");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("1 recorded copies checked (0 checksums; 1 recorded for copies that had none); 0 missing, 0 different, 0 unrecorded"));

        await using var session = await OperatorSession.StartAsync(settings, CancellationToken.None);
        Assert.That(() => session.Bus, Throws.InvalidOperationException.With.Message.Contains(nameof(OperatorSession.StartWithBusAsync)),
            "a session without a bus says how to start one");
    }

    [Test]
    public async Task When_the_command_line_is_wrong_Should_exit_2_naming_what_is_wrong()
    {
        pipeline.Configure([]);
        var (exit, output) = await pipeline.RunAsync("add_replica");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("--prefix"));
        (exit, output) = await pipeline.RunAsync("frobnicate");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("'frobnicate'"));
        (exit, output) = await pipeline.RunAsync("sync", "stall_timeout=soon");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("--stall-timeout: expected a duration"));
        (exit, output) = await pipeline.RunAsync("verify", "replica=/no/such/replica");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("no replica /no/such/replica is registered"));
        (exit, output) = await pipeline.RunAsync("add_replica", "prefix=/no/such/folder");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("the replica folder /no/such/folder does not exist"));
        (exit, output) = await pipeline.RunAsync("add_replica", "prefix=exao9:/backup");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("prefix=exao9:/backup names a folder of exao9: run add_replica on exao9, or give host=exao9 to reach it over SFTP"));
        (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={pipeline.Backup()}", "hosts=exao/1");
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("the replica's selection: not a host name: \"exao/1\""));
    }

    [Test]
    public async Task When_resync_is_asked_Should_return_at_once_and_the_backlog_be_copied()
    {
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup]);
        var senders = await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory);
        var path = Path.Combine(pipeline.Data, "telem", "r.bintel");
        Files.Write(path, 4000);
        // Lose every request in flight: once the file is recorded, its request queued and the replica's back-fill
        // announced, stop the services that send requests and empty every queue. Only a resync can then ask for the copy
        // (the watcher's scan, its live events and the back-fill may each have asked for it, in any order).
        var queue = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));
        await Eventually.True(async () => (await pipeline.OriginAsync(path))?.SizeBytes == 4000, Timeout, "the file recorded");
        await Eventually.True(async () => (await pipeline.Management.PeekAsync(pipeline.Name, queue)).Count > 0, Timeout, "the request queued");
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas where backfill_pending") == 0, Timeout, "the back-fill announced");
        await pipeline.StopAsync(senders);
        foreach (var each in await pipeline.Management.QueuesAsync(pipeline.Name))
            await pipeline.Management.PurgeAsync(pipeline.Name, each["name"]!.GetValue<string>());
        Assert.That(await pipeline.Management.PeekAsync(pipeline.Name, queue), Is.Empty, "the request lost");
        await pipeline.StartAsync(settings, PipelineServices.Inventory | PipelineServices.Replicator);

        var (exit, output) = await pipeline.RunAsync("resync", $"replica={backup}", $"prefix={pipeline.Data}/telem");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("Resync requested"));
        await pipeline.ReplicatedAsync(backup, path);
    }

    [Test]
    public async Task When_sync_continuous_runs_as_the_original_tool_writes_it_Should_keep_the_replica_in_sync()
    {
        var backup = pipeline.Backup();
        pipeline.Configure([backup]);
        var process = pipeline.StartProcess("sync", "continuous=true");
        var path = Path.Combine(pipeline.Data, "first.fits");
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from replicas") == 1, Timeout, "the all-in-one process to start");
        Files.Write(path, 10_000);
        Files.AssertSameFile(path, (await pipeline.ReplicatedAsync(backup, path)).ReplicaPath);
        Assert.That(process.Process.HasExited, Is.False);

        // What compose and systemd send to stop it: a clean stop, exit code 0.
        Shell.Run("kill", "-TERM", process.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var stop = new CancellationTokenSource(Timeout);
        await process.Process.WaitForExitAsync(stop.Token);
        process.Process.WaitForExit();
        Assert.That(process.Process.ExitCode, Is.Zero, process.Output);
        Assert.That(process.Output, Does.Not.Contain("disposed"));
    }
}
