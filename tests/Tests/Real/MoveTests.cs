using System.Diagnostics;
using System.Net;
using Dapper;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Storage;
using Xtelemdb.Tests.Real.Faults;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// A file moved into a day folder on its origin (the same name, size and mtime in a new folder)
/// costs a rename on each replica, not a copy, and its record moves with it.
/// </summary>
public sealed class MoveTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    string Telem => Path.Combine(pipeline.Data, "telem");

    Dictionary<string, string> Origins => new() { [TestPipeline.Host] = pipeline.Data };

    /// <summary>Where MagAO-X moves an older file: a folder of the day beside it.</summary>
    static string DayFolderOf(string path, string day = "2026_11_27") => Path.Combine(Path.GetDirectoryName(path)!, day, Path.GetFileName(path));

    static void Move(string from, string to)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.Move(from, to);
    }

    /// <summary>Device and inode: a renamed file keeps them, a copy is a file of its own.</summary>
    static string Inode(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%d:%i", path]) { RedirectStandardOutput = true })!;
        var inode = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        Assert.That(stat.ExitCode, Is.Zero, $"stat {path}");
        return inode;
    }

    const int Bytes = 100_000;

    /// <summary>The whole pipeline, with one telemetry file written and on the replica: what a move starts from.</summary>
    /// <remarks>
    /// The file is written before the services start, so that the start-up scan is its only report. Written
    /// while they run, it could be reported twice (by the scan and the live watcher), and the second request,
    /// handled after the first copy is recorded, would record that copy again or copy over a damage a test makes.
    /// </remarks>
    async Task<(IServiceProvider Services, ReplicaCopier Copier, string Path, ReplicaRow First)> StartWithFileAsync(
        XtelemdbSettings settings, string replica, string name)
    {
        var path = Path.Combine(Telem, name);
        Files.Write(path, Bytes, name.Length);
        var host = await pipeline.StartAsync(settings, PipelineServices.All);
        return (host.Services, host.Services.GetRequiredService<ReplicaCopier>(), path, await pipeline.ReplicatedAsync(replica, path, Timeout));
    }

    /// <summary>Moves the file into a folder of the day on its origin; returns its new path and, once recorded there, its replica's record.</summary>
    async Task<(string Moved, ReplicaRow Row)> MoveIntoDayFolderAsync(string replica, string path)
    {
        var moved = DayFolderOf(path);
        Move(path, moved);
        return (moved, await pipeline.ReplicatedAsync(replica, moved, Timeout));
    }

    /// <summary>An SFTP replica on an sshd of the test's own, set up (sftp-server's options, its log) before it starts.</summary>
    async Task<(SshServer Ssh, string Url, string Folder, XtelemdbSettings Settings)> SftpReplicaAsync(Action<SshServer> setUp)
    {
        var ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));
        await ssh.StopAsync();
        setUp(ssh);
        await ssh.StartSshdAsync();
        var url = $"ssh://{ssh.User}@127.0.0.1:{ssh.Port}/backup";
        return (ssh, url, ssh.ReplicaFolder(), pipeline.Configure([url], tables: new Dictionary<string, string> { [url] = ssh.ReplicaTable() }));
    }

    /// <summary>No rename: the new path was copied in full, and the old copy and its record were left as they were.</summary>
    async Task AssertCopiedInsteadAsync(ReplicaCopier copier, string replica, string path, ReplicaRow first, string why)
    {
        Assert.That((copier.Moves, copier.Copies), Is.EqualTo((0L, 2L)), why);
        Assert.That(File.Exists(first.ReplicaPath), Is.True, "the old copy stays where it was");
        // The version it records, not when: the start-up scan and the replica's back-fill may both ask for
        // the first copy, and the later request, found current, records the same copy again.
        Assert.That(await pipeline.ReplicaAsync(replica, path), Is.EqualTo(first).Using<ReplicaRow>(SameVersion),
            "and so does its record");
    }

    static bool SameVersion(ReplicaRow? a, ReplicaRow? b) => a is not null && b is not null && a with { CopiedAt = default } == b with { CopiedAt = default };

    Task AuditPassesAsync(string replicaName, string folder) =>
        new Audit(pipeline.Connection).PassesAsync(Origins, new Dictionary<string, string> { [replicaName] = folder }, Timeout);

    [Test]
    [NonParallelizable] // counts every in-process replicator's moves in /metrics
    public async Task When_a_file_is_moved_into_a_day_folder_Should_rename_its_copy_on_a_local_replica_and_move_its_record()
    {
        var backup = pipeline.Backup();
        var listen = new IPEndPoint(IPAddress.Loopback, Ports.FreeLoopback());
        var settings = pipeline.Configure([backup]);
        var (_, copier, path, first) = await StartWithFileAsync(settings with { Monitoring = settings.Monitoring with { Listen = listen } }, backup, "camwfs_20261127.bintel");
        var inode = Inode(first.ReplicaPath);

        var (moved, row) = await MoveIntoDayFolderAsync(backup, path);

        Assert.Multiple(() =>
        {
            Assert.That(Inode(row.ReplicaPath), Is.EqualTo(inode), "the very file the replica held, renamed: a copy would be a file of its own");
            Assert.That(File.Exists(first.ReplicaPath), Is.False, "nothing left at the old path on the replica");
            Assert.That((copier.Moves, copier.Copies), Is.EqualTo((1L, 1L)), "one rename, and no copy but the first");
            Assert.That(row.Checksum, Is.EqualTo(first.Checksum).And.EqualTo(Files.Checksum(moved)), "the record moved with its checksum");
            Assert.That(row.ReplicaPath, Is.EqualTo(TestPipeline.TargetOf(backup, moved)));
        });
        Assert.That(await pipeline.ReplicaAsync(backup, path), Is.Null, "the old path's record went in the transaction that recorded the new one");
        Assert.That((await pipeline.OriginAsync(path))!.MissingSince, Is.Not.Null, "the old path is a missing origin");
        Files.AssertSameFile(moved, row.ReplicaPath);
        using (var http = new HttpClient())
        {
            var metrics = await http.GetStringAsync($"http://{listen}/metrics");
            Assert.That(PrometheusText.Sum(metrics, "xtelemdb_replicator_copies_total", "result=\"moved\""), Is.EqualTo(1), "operators see the move");
        }
        await AuditPassesAsync(TestPipeline.Named(backup), backup);
        var (exit, output) = await pipeline.RunAsync("verify", $"replica={backup}", "checksum=true");
        Assert.That(exit, Is.Zero, output);
    }

    [Test]
    public async Task When_a_file_is_moved_into_a_day_folder_Should_posix_rename_its_copy_on_an_sftp_replica_and_write_nothing()
    {
        // OpenSSH's sftp-server logs each open, mkdir and rename it serves.
        var (ssh, url, folder, settings) = await SftpReplicaAsync(ssh => ssh.LogSftpRequests = true);
        await using var _ = ssh;
        var (_, copier, path, first) = await StartWithFileAsync(settings, url, "camsci1_20261127.bintel");
        var inode = Inode(first.ReplicaPath);

        var (_, row) = await MoveIntoDayFolderAsync(url, path);

        var served = File.ReadAllLines(ssh.SftpLog);
        var dayFolder = Path.GetDirectoryName(row.ReplicaPath)!;
        Assert.Multiple(() =>
        {
            Assert.That(served, Has.Some.EndsWith($"posix-rename old \"{first.ReplicaPath}\" new \"{row.ReplicaPath}\""), "the server renamed the old copy");
            Assert.That(served.Where(l => l.Contains("open \"" + dayFolder + "/", StringComparison.Ordinal)), Is.Empty, "and opened no file in the day folder");
            Assert.That(Inode(row.ReplicaPath), Is.EqualTo(inode), "the very file the replica held");
            Assert.That(File.Exists(first.ReplicaPath), Is.False, "nothing left at the old path on the server");
            Assert.That((copier.Moves, copier.Copies), Is.EqualTo((1L, 1L)), "one rename, and no copy but the first");
            Assert.That(row.Checksum, Is.EqualTo(first.Checksum), "the record moved with its checksum");
        });
        Assert.That(await pipeline.ReplicaAsync(url, path), Is.Null, "the old path's record is gone");
        await AuditPassesAsync(url, folder);
    }

    [Test]
    public async Task When_the_sftp_server_lacks_posix_rename_Should_copy_the_moved_file_and_keep_the_old_copy()
    {
        // Neither offered nor accepted: a plain SFTP rename is never used for a move.
        var (ssh, url, folder, settings) = await SftpReplicaAsync(ssh => ssh.SftpOptions = "-P posix-rename");
        await using var _ = ssh;
        var (_, copier, path, first) = await StartWithFileAsync(settings, url, "camsci2_20261127.bintel");

        var (moved, row) = await MoveIntoDayFolderAsync(url, path);

        await AssertCopiedInsteadAsync(copier, url, path, first, "copied, not renamed");
        Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(moved)));
        await AuditPassesAsync(url, folder);
    }

    [Test]
    public async Task When_the_replicas_old_copy_differs_from_its_record_Should_copy_the_moved_file_in_full_and_leave_the_old_copy_alone()
    {
        var backup = pipeline.Backup();
        // No fixity check: it would find the damage below first, and forget the record this test looks for.
        var settings = pipeline.Configure([backup], tables: new Dictionary<string, string> { [backup] = "fixity_period = \"off\"" });
        var (_, copier, path, first) = await StartWithFileAsync(settings, backup, "dmtweeter_20261127.bintel");
        // The replica's copy is damaged: longer than its record, its mtime kept.
        var mtime = File.GetLastWriteTimeUtc(first.ReplicaPath);
        File.AppendAllText(first.ReplicaPath, "damage");
        File.SetLastWriteTimeUtc(first.ReplicaPath, mtime);

        var (moved, row) = await MoveIntoDayFolderAsync(backup, path);

        await AssertCopiedInsteadAsync(copier, backup, path, first, "a full copy, not a rename of a copy that is not the version");
        Files.AssertSameFile(moved, row.ReplicaPath);
        Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(moved)), "the checksum of the bytes copied");
        Assert.That(new FileInfo(first.ReplicaPath).Length, Is.EqualTo(Bytes + "damage".Length), "the damaged copy is left as it was, for verify to report");
    }

    [Test]
    public async Task When_the_new_path_is_taken_on_the_replica_Should_copy_over_it_and_keep_the_old_copy()
    {
        var backup = pipeline.Backup();
        var (_, copier, path, first) = await StartWithFileAsync(pipeline.Configure([backup]), backup, "camlgs_20261127.bintel");
        // Something nobody recorded already sits where the moved file's copy goes.
        Files.Write(TestPipeline.TargetOf(backup, DayFolderOf(path)), 777, 99);

        var (moved, row) = await MoveIntoDayFolderAsync(backup, path);

        await AssertCopiedInsteadAsync(copier, backup, path, first, "never renamed over a file: copied, as without a move");
        Files.AssertSameFile(moved, row.ReplicaPath);
        await AuditPassesAsync(TestPipeline.Named(backup), backup);
    }

    [Test]
    public async Task When_a_moved_file_is_moved_back_Should_rename_it_back_and_a_late_request_of_the_first_move_Should_move_nothing()
    {
        var backup = pipeline.Backup();
        var (services, copier, path, first) = await StartWithFileAsync(pipeline.Configure([backup]), backup, "camlowfs_20261127.bintel");
        var inode = Inode(first.ReplicaPath);
        var (moved, there) = await MoveIntoDayFolderAsync(backup, path);

        // The old path reappears: moved back.
        Move(moved, path);
        var back = await pipeline.ReplicatedAsync(backup, path);
        Assert.Multiple(() =>
        {
            Assert.That((copier.Moves, copier.Copies), Is.EqualTo((2L, 1L)), "renamed there and back, copied once");
            Assert.That(Inode(first.ReplicaPath), Is.EqualTo(inode), "the same file again at the old path");
            Assert.That(File.Exists(there.ReplicaPath), Is.False, "nothing left in the day folder");
            Assert.That(back.Checksum, Is.EqualTo(first.Checksum));
        });
        Assert.That(await pipeline.ReplicaAsync(backup, moved), Is.Null, "the day folder's record is gone");

        // The first move's request, redelivered late: its new path is gone from the origin and its old path is back.
        var bus = services.GetRequiredService<IBus>();
        var late = new LateMove(moved);
        using (bus.ConnectConsumeMessageObserver(late))
        {
            var queue = await bus.GetSendEndpoint(new Uri($"queue:{Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup))}"));
            await queue.Send(new ReplicaNeeded
            {
                ReplicaId = (int)await pipeline.CountAsync("select id from replicas"), ReplicaUrl = TestPipeline.Named(backup),
                OriginHost = TestPipeline.Host, OriginPath = moved, Mtime = there.Mtime, Size = there.SizeBytes, MovedFrom = path,
            });
            await Eventually.True(() => late.Done, Timeout, "the late request to be handled");
        }
        Assert.That(late.Failure, Is.Null, "handled without a fault");
        Assert.That(Inode(first.ReplicaPath), Is.EqualTo(inode), "the copy at the old path stays");
        Assert.That((copier.Moves, copier.Copies), Is.EqualTo((2L, 1L)), "nothing renamed, nothing copied");
        Assert.That((await pipeline.ReplicaAsync(backup, path))!.CopiedAt, Is.EqualTo(back.CopiedAt), "its record untouched");
        await AuditPassesAsync(TestPipeline.Named(backup), backup);
    }

    [Test]
    public async Task When_a_file_vanishes_as_two_of_its_name_and_version_appear_Should_rename_it_to_one_and_copy_the_other()
    {
        var backup = pipeline.Backup();
        var (_, copier, path, first) = await StartWithFileAsync(pipeline.Configure([backup]), backup, "camtip_20261127.bintel");

        // A copy with its mtime, made aside and renamed in (one finished version), and the file itself moved.
        var (copied, moved) = (DayFolderOf(path, "2026_11_26"), DayFolderOf(path, "2026_11_27"));
        var staged = Path.Combine(pipeline.Root, "staged.bintel");
        File.Copy(path, staged);
        File.SetLastWriteTimeUtc(staged, File.GetLastWriteTimeUtc(path));
        Move(staged, copied);
        Move(path, moved);
        await pipeline.ReplicatedAsync(backup, copied);
        await pipeline.ReplicatedAsync(backup, moved);

        Assert.That((copier.Moves, copier.Copies), Is.EqualTo((1L, 2L)), "the old copy renamed to one new path, the other copied");
        Assert.That(await pipeline.ReplicaAsync(backup, path), Is.Null, "the old path's record is gone");
        foreach (var now in new[] { copied, moved })
            Assert.That((await pipeline.ReplicaAsync(backup, now))!.Checksum, Is.EqualTo(first.Checksum), now);
        await AuditPassesAsync(TestPipeline.Named(backup), backup);
    }

    [Test]
    public async Task When_a_night_of_files_is_moved_into_a_day_folder_made_just_before_Should_rename_every_copy()
    {
        // The day folder's own scan reports the files moved into it before their old paths are reported gone.
        var backup = pipeline.Backup();
        var host = await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        var copier = host.Services.GetRequiredService<ReplicaCopier>();
        var paths = Enumerable.Range(0, 40).Select(i => Path.Combine(Telem, $"camwfs_20261127_{i:D4}.bintel")).ToArray();
        for (var i = 0; i < paths.Length; i++)
            Files.Write(paths[i], 5_000 + i, i);
        foreach (var path in paths)
            await pipeline.ReplicatedAsync(backup, path);

        Directory.CreateDirectory(Path.GetDirectoryName(DayFolderOf(paths[0]))!);
        foreach (var path in paths)
            File.Move(path, DayFolderOf(path));
        foreach (var path in paths)
            await pipeline.ReplicatedAsync(backup, DayFolderOf(path));

        Assert.That((copier.Moves, copier.Copies), Is.EqualTo((40L, 40L)), "every copy renamed, none copied again");
        Assert.That(await pipeline.CountAsync("select count(*) from file_replicas"), Is.EqualTo(40), "one record per file, at its new path");
        await AuditPassesAsync(TestPipeline.Named(backup), backup);
    }

    [Test]
    public async Task When_a_file_is_copied_with_its_mtime_into_a_day_folder_Should_copy_it_and_keep_the_originals_copy()
    {
        var backup = pipeline.Backup();
        var (_, copier, path, first) = await StartWithFileAsync(pipeline.Configure([backup]), backup, "camflowfs_20261127.bintel");

        // cp -p: the same name, size and mtime in a day folder, and the original stays.
        var staged = Path.Combine(pipeline.Root, "staged.bintel");
        File.Copy(path, staged);
        File.SetLastWriteTimeUtc(staged, File.GetLastWriteTimeUtc(path));
        Move(staged, DayFolderOf(path));
        var row = await pipeline.ReplicatedAsync(backup, DayFolderOf(path));

        await AssertCopiedInsteadAsync(copier, backup, path, first, "copied: the original is still on its origin");
        Assert.That(row.Checksum, Is.EqualTo(first.Checksum));
        Files.AssertSameFile(path, first.ReplicaPath);
        await AuditPassesAsync(TestPipeline.Named(backup), backup);
    }

    [Test]
    public async Task When_a_request_names_an_old_path_that_steps_out_of_the_prefix_Should_land_in_the_error_queue_and_rename_nothing()
    {
        var backup = pipeline.Backup();
        var (_, copier, path, first) = await StartWithFileAsync(pipeline.Configure([backup]), backup, "camvisx_20261127.bintel");
        var queue = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));

        // Published by hand, as from the management UI: a MovedFrom with ".." in it.
        await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", queue, $$$"""
            {"messageType": ["urn:message:Xtelemdb:ReplicaNeeded"],
             "message": {"replicaId": 1, "replicaUrl": "{{{TestPipeline.Named(backup)}}}", "originHost": "{{{TestPipeline.Host}}}",
                         "originPath": "{{{DayFolderOf(path)}}}", "mtime": "{{{first.Mtime:O}}}", "size": {{{first.SizeBytes}}},
                         "movedFrom": "/telem/../../../etc/passwd"}}
            """, new Dictionary<string, object> { ["content_type"] = "application/vnd.masstransit+json" });
        var errors = await Eventually.Get<IReadOnlyList<System.Text.Json.Nodes.JsonObject>>(async () => await pipeline.Management.PeekAsync(pipeline.Name, queue + "_error"),
            m => m?.Count == 1, Timeout, "the request in the error queue");

        Assert.That(errors[0]["properties"]!["headers"]!["MT-Fault-Message"]?.ToString(),
            Does.Contain("a path with a \".\" or \"..\" component: \"/telem/../../../etc/passwd\""));
        Assert.That(copier.Moves, Is.Zero, "nothing renamed");
        var (_, row) = await MoveIntoDayFolderAsync(backup, path);
        Assert.That((copier.Moves, row.Checksum), Is.EqualTo((1L, first.Checksum)), "the next request is served");
    }

    static readonly DateTime T0 = new(2026, 11, 27, 1, 0, 0, DateTimeKind.Utc);

    /// <summary>The inventory alone, as the store tests drive it: the watcher's and the replicator's messages come from the test.</summary>
    async Task<(InventoryStore Store, int ReplicaId, string Backup)> InventoryAsync()
    {
        var backup = pipeline.Backup();
        var host = await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.Inventory);
        var store = host.Services.GetRequiredService<InventoryStore>();
        return (store, (await store.ReplicasAsync(CancellationToken.None)).Single().Id, backup);
    }

    static FileChanged Seen(string path, int observedMinute, bool deleted = false) => new()
    {
        Host = TestPipeline.Host, Path = path, Mtime = T0.AddTicks(1234567), Size = 4096, ObservedAt = T0.AddMinutes(observedMinute), Deleted = deleted,
    };

    static ReplicaUpdated Copied(int replicaId, string backup, string path, int copiedMinute, string checksum, string? movedFrom = null) => new()
    {
        ReplicaId = replicaId, OriginHost = TestPipeline.Host, OriginPath = path, Mtime = T0.AddTicks(1234567), Size = 4096,
        ReplicaPath = TestPipeline.TargetOf(backup, path), Checksum = checksum, CopiedAt = T0.AddMinutes(copiedMinute), MovedFrom = movedFrom,
    };

    [Test]
    public async Task When_a_move_is_reported_again_after_the_old_path_was_copied_anew_Should_keep_the_new_copys_record()
    {
        var (store, replica, backup) = await InventoryAsync();
        await store.UpsertOriginsAsync([Seen("/telem/x.bintel", 1)], CancellationToken.None);
        await store.RecordReplicasAsync([Copied(replica, backup, "/telem/x.bintel", 2, "xxh3:aa")], CancellationToken.None);
        await store.UpsertOriginsAsync([Seen("/telem/x.bintel", 3, deleted: true), Seen("/telem/2026_11_27/x.bintel", 3)], CancellationToken.None);
        var needs = await store.NeedsOrMovesOfAsync([(TestPipeline.Host, "/telem/2026_11_27/x.bintel")], CancellationToken.None);
        Assert.That(needs.Select(n => n.MovedFrom), Is.EqualTo(new[] { "/telem/x.bintel" }), "the replica holding the old path is asked to rename it");

        var move = Copied(replica, backup, "/telem/2026_11_27/x.bintel", 4, "xxh3:aa", movedFrom: "/telem/x.bintel");
        await store.RecordReplicasAsync([move], CancellationToken.None);
        Assert.That(await pipeline.ReplicaAsync(backup, "/telem/x.bintel"), Is.Null, "the old path's record went with the move");
        Assert.That((await pipeline.ReplicaAsync(backup, "/telem/2026_11_27/x.bintel"))?.Checksum, Is.EqualTo("xxh3:aa"));

        // The old path comes back and is copied again; then the move's report is delivered once more.
        await store.UpsertOriginsAsync([Seen("/telem/x.bintel", 5)], CancellationToken.None);
        await store.RecordReplicasAsync([Copied(replica, backup, "/telem/x.bintel", 6, "xxh3:aa")], CancellationToken.None);
        var asked = await store.RecordReplicasAsync([move], CancellationToken.None);
        Assert.That((await pipeline.ReplicaAsync(backup, "/telem/x.bintel"))?.CopiedAt, Is.EqualTo(T0.AddMinutes(6)), "a later copy of the old path is never forgotten");
        Assert.That(asked[0], Is.Empty, "both paths are in sync: nothing asked");
    }

    [Test]
    public async Task When_the_old_path_vanished_long_before_or_its_copy_was_found_damaged_or_two_paths_appear_Should_rename_only_where_safe()
    {
        var (store, replica, backup) = await InventoryAsync();
        string[] olds = ["/a/long_ago.bintel", "/a/damaged.bintel", "/a/twice.bintel", "/a/still_here.bintel"];
        await store.UpsertOriginsAsync(olds.Select(p => Seen(p, 1)).ToArray(), CancellationToken.None);
        await store.RecordReplicasAsync(olds.Select(p => Copied(replica, backup, p, 2, "xxh3:bb")).ToArray(), CancellationToken.None);
        await using (var db = new NpgsqlConnection(pipeline.Connection))
            await db.ExecuteAsync("update file_replicas set damaged_at = now() where origin_path = '/a/damaged.bintel'");
        await store.UpsertOriginsAsync([Seen("/a/long_ago.bintel", 3, deleted: true), Seen("/a/damaged.bintel", 20, deleted: true), Seen("/a/twice.bintel", 20, deleted: true)],
            CancellationToken.None);
        string[] news = ["/a/d1/long_ago.bintel", "/a/d1/damaged.bintel", "/a/d1/twice.bintel", "/a/d2/twice.bintel", "/a/d1/still_here.bintel"];
        await store.UpsertOriginsAsync(news.Select(p => Seen(p, 20)).ToArray(), CancellationToken.None);

        var needs = await store.NeedsOrMovesOfAsync(news.Select(p => (TestPipeline.Host, p)), CancellationToken.None);
        Assert.That(needs.ToDictionary(n => n.OriginPath, n => n.MovedFrom), Is.EquivalentTo(new Dictionary<string, string?>
        {
            ["/a/d1/long_ago.bintel"] = null, // gone 17 minutes before: not taken for a move
            ["/a/d1/damaged.bintel"] = null, // the fixity check found its copy damaged: copied afresh
            ["/a/d1/twice.bintel"] = "/a/twice.bintel", // one new path takes the rename…
            ["/a/d2/twice.bintel"] = null, // …the other is copied
            // Not reported gone yet (a day folder's scan reports what was moved in first): the replicator renames only if the origin lost it.
            ["/a/d1/still_here.bintel"] = "/a/still_here.bintel",
        }));
    }

    /// <summary>Sees the late request of a move handled, or failing (which it must not).</summary>
    sealed class LateMove(string originPath) : IConsumeMessageObserver<ReplicaNeeded>
    {
        volatile bool done;
        volatile Exception? failure;

        public bool Done => done || failure is not null;

        public Exception? Failure => failure;

        public Task PreConsume(ConsumeContext<ReplicaNeeded> context) => Task.CompletedTask;

        public Task PostConsume(ConsumeContext<ReplicaNeeded> context)
        {
            done |= Ours(context.Message);
            return Task.CompletedTask;
        }

        public Task ConsumeFault(ConsumeContext<ReplicaNeeded> context, Exception exception)
        {
            if (Ours(context.Message))
                failure = exception;
            return Task.CompletedTask;
        }

        bool Ours(ReplicaNeeded need) => need.OriginPath == originPath && need.MovedFrom is not null;
    }
}
