using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>The whole loop, all in one process, on the real broker and database.</summary>
public sealed class LocalReplicationTests : PipelineTest
{
    static readonly TimeSpan Timeout = Eventually.Patience;
    [Test]
    public async Task When_a_file_is_written_for_seconds_then_closed_Should_reach_the_replica_with_the_same_bytes_mtime_and_checksum()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);

        var path = Path.Combine(pipeline.Data, "telem", "camwfs_20261127.bintel");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using (var writer = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read))
        {
            var chunk = new byte[64 * 1024];
            for (var i = 0; i < 30; i++)
            {
                new Random(i).NextBytes(chunk);
                await writer.WriteAsync(chunk);
                await writer.FlushAsync();
                await Task.Delay(100);
            }
        }

        var row = await pipeline.ReplicatedAsync(backup, path);
        var target = TestPipeline.TargetOf(backup, path);
        Files.AssertSameFile(path, target);
        var origin = await pipeline.OriginAsync(path);
        Assert.Multiple(() =>
        {
            Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(path)));
            Assert.That(row.ReplicaPath, Is.EqualTo(target));
            Assert.That(origin, Is.Not.Null);
            Assert.That((origin!.Mtime, origin.SizeBytes), Is.EqualTo((row.Mtime, row.SizeBytes)), "origin and replica rows agree");
            Assert.That(origin.SizeBytes, Is.EqualTo(30 * 64 * 1024));
        });
        // Every delivery is in a copy at once, none waits unacknowledged behind one: prefetch = [replicator] concurrency (4 here).
        var queue = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));
        var prefetch = await Eventually.Get(async () => (int[]?)[.. await pipeline.Management.PrefetchCountsAsync(pipeline.Name, queue)],
            p => p is { Length: > 0 }, Eventually.Patience, "the replicator's consumer listed");
        Assert.That(prefetch, Is.EqualTo(new[] { 4 }));
    }

    [Test]
    public async Task When_a_file_changes_Should_copy_it_again_and_When_a_request_repeats_Should_not_copy_twice()
    {
        var backup = pipeline.Backup();
        // Counts copies exactly: the rolling fixity check, which reads new copies first, once found the
        // second version's copy before its report was recorded, took it for another version and asked
        // for it again (a third copy). That race is the check's own; here it is off.
        var tables = new Dictionary<string, string> { [backup] = "local = true\nfixity_period = \"off\"" };
        var host = await pipeline.StartAsync(pipeline.Configure([backup], tables: tables), PipelineServices.All);
        var copier = host.Services.GetRequiredService<ReplicaCopier>();

        var path = Path.Combine(pipeline.Data, "a.fits");
        Files.Write(path, 100_000, seed: 1);
        var first = await pipeline.ReplicatedAsync(backup, path);
        Assert.That(copier.Copies, Is.EqualTo(1));

        // The same request again, as a redelivery would bring it: a quick check, no copy.
        var needed = new ReplicaNeeded
        {
            ReplicaId = 1, ReplicaUrl = backup, OriginHost = TestPipeline.Host, OriginPath = path,
            Mtime = first.Mtime, Size = first.SizeBytes,
        };
        var bus = host.Services.GetRequiredService<MassTransit.IBus>();
        var requests = new Consumed<ReplicaNeeded>();
        using (bus.ConnectConsumeMessageObserver(requests))
        {
            var queue = await bus.GetSendEndpoint(new Uri($"queue:{Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup))}"));
            await queue.Send(needed);
            await queue.Send(needed);
            await requests.WaitAsync(2, Timeout);
        }
        await Eventually.True(async () => (await pipeline.ReplicaAsync(backup, path))!.CopiedAt > first.CopiedAt, Timeout, "the repeated requests to be answered");
        Assert.That(copier.Copies, Is.EqualTo(1), "a repeated request costs a stat, not a copy");
        Assert.That((await pipeline.ReplicaAsync(backup, path))!.Checksum, Is.EqualTo(first.Checksum), "the quick check keeps the recorded checksum");

        Files.Write(path, 120_000, seed: 2);
        var second = await pipeline.ReplicatedAsync(backup, path);
        Assert.That(copier.Copies, Is.EqualTo(2));
        Assert.That(second.Checksum, Is.Not.EqualTo(first.Checksum));
        Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));
    }

    [Test]
    public async Task When_a_replica_is_added_later_Should_back_fill_every_existing_file()
    {
        var first = pipeline.Backup("first");
        var host = await pipeline.StartAsync(pipeline.Configure([first]), PipelineServices.All);
        var paths = Enumerable.Range(0, 25).Select(i => Path.Combine(pipeline.Data, $"d{i % 3}", $"f{i}.dat")).ToArray();
        for (var i = 0; i < paths.Length; i++)
            Files.Write(paths[i], 1000 + i, seed: i);
        foreach (var path in paths)
            await pipeline.ReplicatedAsync(first, path);
        await pipeline.StopAsync(host);

        // The operator adds a [replicas."…"] table and restarts.
        var later = pipeline.Backup("later");
        host = await pipeline.StartAsync(pipeline.Configure([first, later]), PipelineServices.All);
        foreach (var path in paths)
        {
            await pipeline.ReplicatedAsync(later, path);
            Files.AssertSameFile(path, TestPipeline.TargetOf(later, path));
        }
        Assert.That(host.Services.GetRequiredService<ReplicaCopier>().Copies, Is.EqualTo(paths.Length), "the first replica was not copied again");
    }

    [Test]
    public async Task When_a_file_changes_during_its_copy_Should_not_record_the_version_that_was_not_copied()
    {
        var backup = pipeline.Backup();
        var host = await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        var copier = host.Services.GetRequiredService<ReplicaCopier>();
        var path = Path.Combine(pipeline.Data, "growing.bin");
        var appended = 0;
        copier.Progress = (_, _) =>
        {
            // Mid-copy, on the first attempt only: the writer appends.
            if (Interlocked.Exchange(ref appended, 1) == 0)
            {
                using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
                stream.Write(new byte[4096]);
            }
        };
        Files.Write(path, 8 << 20, seed: 3);

        var row = await pipeline.ReplicatedAsync(backup, path);
        Assert.That(appended, Is.EqualTo(1), "the file changed during a copy");
        Assert.That(copier.Discarded, Is.GreaterThanOrEqualTo(1), "the copy made while it changed was thrown away");
        Assert.That(row.SizeBytes, Is.EqualTo((8 << 20) + 4096));
        Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(path)));
        Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));
    }

    [Test]
    public async Task When_a_root_holds_a_fifo_a_socket_and_a_device_Should_back_up_only_the_files_and_report_the_rest()
    {
        var backup = pipeline.Backup();
        var before = Path.Combine(pipeline.Data, "old", "pipe-before");
        Directory.CreateDirectory(Path.GetDirectoryName(before)!);
        Shell.Run("mkfifo", before); // seen by the start-up scan
        var host = await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "2s"), PipelineServices.All);
        var skipped = host.Services.GetRequiredService<Watcher.FileWatchService>().Skipped;
        var fifo = Path.Combine(pipeline.Data, "live", "pipe");
        var device = Path.Combine(pipeline.Data, "live", "null-device");
        var socketPath = Path.Combine(pipeline.Data, "live", "socket");
        Directory.CreateDirectory(Path.GetDirectoryName(fifo)!);
        Shell.Run("mkfifo", fifo);
        Shell.Run("mknod", device, "c", "1", "3");
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
        var file = Path.Combine(pipeline.Data, "live", "empty.dat");
        File.WriteAllBytes(file, []);

        await pipeline.ReplicatedAsync(backup, file);
        await Eventually.True(() => skipped.Seen.Count == 4, Timeout, "the four entries reported");
        Assert.That(skipped.Seen, Is.EquivalentTo(new Dictionary<string, string>
        {
            [before] = "a FIFO", [fifo] = "a FIFO", [device] = "a character device", [socketPath] = "a socket",
        }));
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins"), Is.EqualTo(1), "only the empty regular file is an origin");
        // A poll's complete list reaches the database, and verify lists it.
        await Eventually.Get(async () => (object?)await pipeline.CountAsync("select count(*) from skipped_files"), n => (long)n! == 4, Timeout, "the four entries recorded");
        var (exit, output) = await pipeline.RunAsync("verify");
        Assert.That(exit, Is.Zero, "the replica itself is complete: " + output);
        Assert.That(output, Does.Contain("4 entries the watchers do not back up"));
        foreach (var (path, kind) in new[] { (fifo, "a FIFO"), (device, "a character device"), (socketPath, "a socket") })
            Assert.That(output, Does.Contain($"{TestPipeline.Host}:{path}").And.Contain($"not backed up: {kind}"));

        // Gone from the root, gone from the list at the next poll.
        File.Delete(fifo);
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from skipped_files") == 3, Timeout, "the deleted FIFO forgotten");
    }

    [Test]
    public async Task When_names_are_not_valid_utf8_Should_report_them_by_their_bytes_and_never_publish_them()
    {
        var backup = pipeline.Backup();
        var night = Path.Combine(pipeline.Data, "night");
        Directory.CreateDirectory(night);
        // .NET cannot make such names; bash's printf writes the bytes.
        Shell.Run("bash", "-c", $"cd '{night}' && printf x > \"$(printf 'cam\\xff.fits')\" && mkdir \"$(printf 'old\\xfe')\" && printf y > \"$(printf 'old\\xfe')/inside.dat\"");
        var good = Path.Combine(night, "good.dat");
        Files.Write(good, 100);
        var host = await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "2s"), PipelineServices.All);

        await pipeline.ReplicatedAsync(backup, good);
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from skipped_files") == 2, Timeout, "both names recorded");
        var skipped = host.Services.GetRequiredService<Watcher.FileWatchService>().Skipped.Seen;
        Assert.That(skipped, Is.EquivalentTo(new Dictionary<string, string>
        {
            [$"{night}/cam\\xff.fits"] = "a name that is not valid UTF-8",
            [$"{night}/old\\xfe"] = "a folder whose name is not valid UTF-8: nothing below it is backed up",
        }));
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins where origin_path like '%\uFFFD%'"), Is.Zero, "no mangled name published");
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins"), Is.EqualTo(1));
        var (exit, output) = await pipeline.RunAsync("verify");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain($"{TestPipeline.Host}:{night}/cam\\xff.fits").And.Contain("not backed up: a name that is not valid UTF-8"));
        Assert.That(output, Does.Contain($"{TestPipeline.Host}:{night}/old\\xfe").And.Contain("nothing below it is backed up"));
    }

    [Test]
    [NonParallelizable] // 1,500 copies within its timeout: other fixtures' load made it miss twice
    public async Task When_files_exist_before_the_first_start_Should_copy_every_one()
    {
        // A new installation on a full data folder: the initial scan reports all of it before the
        // inventory has ever declared its queue, and nothing may be lost.
        var backup = pipeline.Backup();
        var paths = Enumerable.Range(0, 1500).Select(i => Path.Combine(pipeline.Data, $"d{i % 7}", $"old{i}.dat")).ToArray();
        foreach (var path in paths)
            Files.Write(path, 64);
        var settings = pipeline.Configure([backup]);
        await pipeline.StartAsync(settings, PipelineServices.Watcher);
        // The whole scan waits in the inventory's queue: lists of observations, then ScanCompleted.
        await Eventually.True(async () => (await pipeline.Management.PeekAsync(pipeline.Name, Queues.FileChanged, 50))
            .Any(m => m["payload"]!.GetValue<string>().Contains("urn:message:Xtelemdb:ScanCompleted", StringComparison.Ordinal)), Timeout, "the start-up scan queued");
        await pipeline.StartAsync(settings, PipelineServices.Inventory | PipelineServices.Replicator);
        await Eventually.True(async () => await pipeline.CountAsync("select count(*) from file_replicas") == paths.Length, Timeout, "every file copied");
        Assert.That(await pipeline.CountAsync("select count(*) from file_origins"), Is.EqualTo(paths.Length));
    }

    [Test]
    public async Task When_names_are_awkward_Should_store_and_copy_them_exactly()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        string[] names = ["with space.fits", "ünïcödé-観測.dat", "quote's \"double\".txt", "new\nline.txt", "-leading-dash", ".hidden", "back\\slash", "percent%_under.txt"];
        var paths = names.Select(n => Path.Combine(pipeline.Data, "odd dir", n)).ToArray();
        for (var i = 0; i < paths.Length; i++)
            Files.Write(paths[i], 500 + i, seed: i);

        foreach (var path in paths)
        {
            var row = await pipeline.ReplicatedAsync(backup, path);
            Assert.That(row.OriginPath, Is.EqualTo(path));
            Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));
        }
    }

    [Test]
    public async Task When_a_file_is_deleted_Should_mark_its_origin_missing_and_keep_its_replica()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "gone.dat");
        Files.Write(path, 2048);
        await pipeline.ReplicatedAsync(backup, path);

        File.Delete(path);
        var origin = await Eventually.Get(() => pipeline.OriginAsync(path), o => o?.MissingSince is not null, Timeout, "the origin marked missing");
        Assert.Multiple(async () =>
        {
            Assert.That(origin.SizeBytes, Is.EqualTo(2048), "the last version is kept");
            Assert.That(await pipeline.ReplicaAsync(backup, path), Is.Not.Null, "the replica row is kept");
            Assert.That(File.Exists(TestPipeline.TargetOf(backup, path)), Is.True, "backups never delete");
        });
    }

    [Test]
    public async Task When_a_folder_with_files_is_moved_in_Should_copy_every_file_in_it()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        var outside = Path.Combine(pipeline.Root, "staging", "night1");
        for (var i = 0; i < 20; i++)
            Files.Write(Path.Combine(outside, $"sub{i % 2}", $"img{i}.fits"), 300 + i, seed: i);

        var inside = Path.Combine(pipeline.Data, "night1");
        Directory.Move(outside, inside);
        for (var i = 0; i < 20; i++)
            await pipeline.ReplicatedAsync(backup, Path.Combine(inside, $"sub{i % 2}", $"img{i}.fits"));
    }

    [Test]
    public async Task When_the_live_watcher_cannot_see_a_change_Should_catch_it_with_the_poll_and_count_it()
    {
        var backup = pipeline.Backup();
        var hidden = Path.Combine(pipeline.Data, "mounted");
        Directory.CreateDirectory(hidden);
        var host = await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "2s"), PipelineServices.All);
        var watcher = host.Services.GetRequiredService<Watcher.FileWatchService>();

        // inotify watches the folder under the mount point, so nothing written on the mount raises an event.
        Shell.Run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", hidden);
        try
        {
            var path = Path.Combine(hidden, "unseen.dat");
            Files.Write(path, 3000);
            await pipeline.ReplicatedAsync(backup, path);
            Files.AssertSameFile(path, TestPipeline.TargetOf(backup, path));
            Assert.That(watcher.MissedByLiveWatcher, Is.GreaterThanOrEqualTo(1));
        }
        finally
        {
            Shell.Run("umount", "-l", hidden);
        }
    }
}
