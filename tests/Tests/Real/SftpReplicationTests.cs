using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Replicator.Sftp;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>SSH replicas over SFTP, against a real OpenSSH server on 127.0.0.1.</summary>
public sealed class SftpReplicationTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    SshServer ssh = null!;

    [SetUp]
    public async Task StartSshdAsync() => ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));

    [TearDown]
    public async Task StopSshdAsync() => await ssh.DisposeAsync();

    /// <summary>ssh://user@127.0.0.1:port/backup: relative to the SFTP start folder, as a home-relative path would be.</summary>
    string Url => $"ssh://{ssh.User}@127.0.0.1:{ssh.Port}/backup";

    string RemotePath(string originPath) => Path.Combine(ssh.Home, "backup", TestPipeline.Host) + originPath;

    XtelemdbSettings Configure(string? identity = null, string? knownHosts = null, string extra = "") =>
        pipeline.Configure([Url], tables: new Dictionary<string, string>
        {
            [Url] = ssh.ReplicaTable(identity, knownHosts, extra),
        });

    [Test]
    [NonParallelizable] // counts copies exactly: a 64 MiB write slowed past the settle time by other tests' load is copied twice
    public async Task When_files_change_Should_copy_them_over_sftp_with_mtime_checksum_and_awkward_names()
    {
        ssh.ReplicaFolder();
        var host = await pipeline.StartAsync(Configure(), PipelineServices.All);
        string[] names = ["plain.fits", "with space.dat", "ünï'\"cödé.txt", "-dash", "new\nline"];
        var paths = names.Select(n => Path.Combine(pipeline.Data, "night", n)).ToArray();
        for (var i = 0; i < paths.Length; i++)
            Files.Write(paths[i], 1000 + i, seed: i);
        var large = Path.Combine(pipeline.Data, "large.raw");
        Files.Write(large, 64 << 20, seed: 9);

        foreach (var path in paths.Append(large))
        {
            var row = await pipeline.ReplicatedAsync(Url, path, Timeout);
            Assert.That(row.ReplicaPath, Is.EqualTo(RemotePath(path)));
            Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(path)), "the checksum of the bytes sent");
            Assert.That(Files.Checksum(RemotePath(path)), Is.EqualTo(Files.Checksum(path)), "the bytes on the server");
            Assert.That(File.GetLastWriteTimeUtc(RemotePath(path)).Ticks / TimeSpan.TicksPerSecond,
                Is.EqualTo(File.GetLastWriteTimeUtc(path).Ticks / TimeSpan.TicksPerSecond), "the mtime, to the second SFTP keeps");
        }
        var copier = host.Services.GetRequiredService<ReplicaCopier>();
        Assert.That(copier.Copies, Is.EqualTo(paths.Length + 1));

        Files.Write(paths[0], 5555, seed: 42);
        await pipeline.ReplicatedAsync(Url, paths[0], Timeout);
        Assert.That(Files.Checksum(RemotePath(paths[0])), Is.EqualTo(Files.Checksum(paths[0])), "an update replaces the copy");
        Assert.That(Directory.EnumerateFiles(Path.Combine(ssh.Home, "backup"), "*.xtelemdb-part", SearchOption.AllDirectories), Is.Empty);
        Assert.That(copier.Copies, Is.EqualTo(paths.Length + 2), "unchanged files were not copied again");
    }

    [Test]
    public async Task When_a_file_is_rewritten_at_the_same_size_within_one_second_Should_copy_the_new_bytes_not_record_the_old()
    {
        ssh.ReplicaFolder();
        await pipeline.StartAsync(Configure(), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "rewritten.dat");
        var second = new DateTime(2026, 11, 27, 3, 0, 0, DateTimeKind.Utc);
        void Place(int seed, DateTime mtime)
        {
            // Written beside the watched folder and renamed in: the watcher sees one finished version.
            var staged = Path.Combine(pipeline.Root, "staged.dat");
            Files.Write(staged, 4096, seed);
            File.SetLastWriteTimeUtc(staged, mtime);
            File.Move(staged, path, overwrite: true);
        }
        Place(seed: 1, second.AddMilliseconds(300));
        await pipeline.ReplicatedAsync(Url, path, Timeout);
        Place(seed: 2, second.AddMilliseconds(700)); // SFTP keeps whole seconds: the same second, the same size, other bytes

        var row = await pipeline.ReplicatedAsync(Url, path, Timeout);
        Assert.That(Files.Checksum(RemotePath(path)), Is.EqualTo(Files.Checksum(path)), "the new bytes are on the server");
        Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(path)), "and recorded with their checksum");
    }

    [Test]
    public async Task When_a_folder_or_a_target_on_the_server_is_a_symlink_out_of_the_prefix_Should_refuse_and_write_nothing_outside()
    {
        ssh.ReplicaFolder();
        var outside = Path.Combine(pipeline.Root, "outside");
        Directory.CreateDirectory(outside);
        var hostFolder = Path.Combine(ssh.Home, "backup", TestPipeline.Host);
        Directory.CreateSymbolicLink(hostFolder, outside); // a folder of the replica leads out of it
        await pipeline.StartAsync(Configure(), PipelineServices.All);
        var errors = Queues.Replicate(TestPipeline.Host, Url) + "_error";

        var first = Path.Combine(pipeline.Data, "x.dat");
        Files.Write(first, 1000);
        // The copy may be asked for twice (by the watcher and by the replica's back-fill): each request is refused.
        var faults = await Eventually.Get(async () => await pipeline.Management.PeekAsync(pipeline.Name, errors), m => m?.Count >= 1, Timeout, "the refused copy");
        Assert.That(faults.Select(Management.FaultReason), Has.All.Contains($"{hostFolder} is a symlink (to {outside})"));
        Assert.That(Directory.EnumerateFileSystemEntries(outside, "*", SearchOption.AllDirectories), Is.Empty, "nothing written outside the prefix");

        // The folders are real now, but the target itself is a link to a file outside.
        Directory.Delete(hostFolder);
        var second = Path.Combine(pipeline.Data, "y.dat");
        var victim = Path.Combine(outside, "precious.txt");
        File.WriteAllText(victim, "precious");
        Directory.CreateDirectory(Path.GetDirectoryName(RemotePath(second))!);
        File.CreateSymbolicLink(RemotePath(second), victim);
        Files.Write(second, 2000);
        await Eventually.Get(async () => await pipeline.Management.PeekAsync(pipeline.Name, errors),
            m => m is not null && m.Select(Management.FaultReason).Any(f => f.Contains($"{RemotePath(second)} is a symlink", StringComparison.Ordinal)), Timeout, "the second refused copy");
        Assert.That(File.ReadAllText(victim), Is.EqualTo("precious"), "the link's target is untouched");
    }

    [Test]
    public async Task When_the_server_offers_fsync_Should_flush_each_copy_before_renaming_it_into_place()
    {
        await ssh.StopAsync();
        ssh.LogSftpRequests = true; // OpenSSH's sftp-server logs each request it serves
        await ssh.StartSshdAsync();
        ssh.ReplicaFolder();
        await pipeline.StartAsync(Configure(), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "night", "cam.fits");
        Files.Write(path, 30_000);
        await pipeline.ReplicatedAsync(Url, path, Timeout);

        var requests = File.ReadAllLines(ssh.SftpLog).Where(l => l.Contains(": request ")).Select(l => l[(l.IndexOf(": request ") + 2)..]).ToList();
        var fsync = requests.FindIndex(r => r.Contains(": fsync (handle"));
        var rename = requests.FindIndex(r => r.EndsWith(": posix-rename"));
        Assert.That(fsync, Is.GreaterThanOrEqualTo(0), "fsync@openssh.com reached the server: " + string.Join("; ", requests));
        Assert.That(fsync, Is.LessThan(rename), "the part file is flushed before it is renamed into place: " + string.Join("; ", requests));
        Assert.That(File.ReadAllText(ssh.SftpLog), Does.Not.Contain("status 4").And.Not.Contain("Failure"), "every request succeeded");
        var (exit, output) = await pipeline.RunAsync("replica_list");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Not.Contain("NOT FLUSHED"));
    }

    [Test]
    public async Task When_the_server_does_not_offer_fsync_Should_still_copy_and_say_the_copies_are_not_flushed()
    {
        await ssh.StopAsync();
        ssh.SftpOptions = "-P fsync"; // neither offered nor accepted
        await ssh.StartSshdAsync();
        ssh.ReplicaFolder();
        var listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, Ports.FreeLoopback());
        var settings = Configure();
        await pipeline.StartAsync(settings with { Monitoring = settings.Monitoring with { Listen = listen } }, PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "night", "cam.fits");
        Files.Write(path, 30_000);
        var row = await pipeline.ReplicatedAsync(Url, path, Timeout);
        Assert.That(Files.Checksum(RemotePath(path)), Is.EqualTo(row.Checksum));

        var why = $"does not offer fsync@openssh.com: copies reach its disk when its kernel writes them back";
        await Eventually.True(async () => (await pipeline.RunAsync("replica_list")).Output.Contains($"NOT FLUSHED: {Url}: "),
            Timeout, "replica_list says the replica is not flushed");
        var (_, output) = await pipeline.RunAsync("replica_list");
        Assert.That(output, Does.Contain(why));
        using var http = new HttpClient();
        var health = await http.GetStringAsync($"http://{listen}/health");
        Assert.That(health, Does.Contain("copies not flushed: " + Url).And.Contain(why));
    }

    [Test]
    public async Task When_the_server_lacks_posix_rename_Should_move_the_old_copy_aside_never_delete_it_first()
    {
        // With -P posix-rename, OpenSSH's sftp-server neither offers the extension nor accepts it.
        await ssh.StopAsync();
        ssh.SftpOptions = "-P posix-rename";
        await ssh.StartSshdAsync();
        ssh.ReplicaFolder();
        await pipeline.StartAsync(Configure(), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "night", "cam.fits");
        Files.Write(path, 3000, seed: 1);
        await pipeline.ReplicatedAsync(Url, path, Timeout);
        Assert.That(Files.Checksum(RemotePath(path)), Is.EqualTo(Files.Checksum(path)), "the first copy, renamed into an empty place");

        // What happens to the old copy, seen from the server's side (inotify, in order).
        var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(RemotePath(path))!) { IncludeSubdirectories = false };
        watcher.Created += (_, e) => events.Enqueue($"created {e.Name}");
        watcher.Deleted += (_, e) => events.Enqueue($"deleted {e.Name}");
        watcher.Renamed += (_, e) => events.Enqueue($"renamed {e.OldName} to {e.Name}");
        watcher.EnableRaisingEvents = true;
        Files.Write(path, 7000, seed: 2);
        var row = await Eventually.Get(() => pipeline.ReplicaAsync(Url, path), r => r?.SizeBytes == 7000, Timeout, "the second version recorded");
        // The aside copy's removal is the replacement's last step: once seen, every earlier event was too.
        await Eventually.True(() => events.Any(e => e.StartsWith("deleted .cam.fits.") && e.EndsWith(SftpReplicaTarget.AsideSuffix)),
            Timeout, "the old copy, moved aside, removed after the rename");
        // OpenSSH renames by link and unlink: the old name goes only once the aside name holds the old copy.
        var seen = events.ToList();
        var aside = seen.FindIndex(e => e.StartsWith("created .cam.fits.") && e.EndsWith(SftpReplicaTarget.AsideSuffix)
            || e.StartsWith("renamed cam.fits to .cam.fits."));
        Assert.That(aside, Is.GreaterThanOrEqualTo(0), "the old copy moved aside: " + string.Join("; ", seen));
        Assert.That(seen.FindIndex(e => e == "deleted cam.fits"), Is.GreaterThan(aside).Or.EqualTo(-1),
            "the old copy's name was not removed before the copy was kept aside: " + string.Join("; ", seen));
        Assert.That(row!.Checksum, Is.EqualTo(Files.Checksum(path)));
        Assert.That(Files.Checksum(RemotePath(path)), Is.EqualTo(Files.Checksum(path)), "the old copy replaced");
        Assert.That(Directory.EnumerateFiles(Path.Combine(ssh.Home, "backup"), ".*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(ReplicaMarker.FileName)), Is.Empty, "no part file nor old copy left aside");
    }

    [Test]
    public async Task When_a_file_is_replaced_by_a_folder_Should_refuse_its_files_at_once_and_keep_the_old_copy()
    {
        ssh.ReplicaFolder();
        await pipeline.StartAsync(Configure(), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "night", "cube");
        Files.Write(path, 5000, seed: 3);
        await pipeline.ReplicatedAsync(Url, path, Timeout);

        File.Delete(path);
        Files.Write(Path.Combine(path, "frame.fits"), 3000, seed: 4);
        var errors = Queues.Replicate(TestPipeline.Host, Url) + "_error";
        var faults = await Eventually.Get(async () => await pipeline.Management.PeekAsync(pipeline.Name, errors), m => m?.Count == 1, Timeout, "the refused copy");
        var headers = faults[0]["properties"]!["headers"]!;
        Assert.That(headers["MT-Fault-Message"]!.GetValue<string>(), Does.Contain($"{RemotePath(path)} is a file, not a folder"));
        Assert.That(headers["MT-Fault-RetryCount"]?.GetValue<int>() ?? 0, Is.Zero, "refused at once, not retried: a retried request holds a copy slot");
        Assert.That(new FileInfo(RemotePath(path)).Length, Is.EqualTo(5000), "the old copy stays");
    }

    [Test]
    public async Task When_the_connection_is_cut_mid_transfer_Should_leave_no_partial_file_and_complete_on_retry()
    {
        ssh.ReplicaFolder();
        // Paced, so the copy is surely under way when the sessions are cut.
        var host = await pipeline.StartAsync(Configure(extra: "bandwidth_limit = \"40MB/s\""), PipelineServices.All);
        var big = Path.Combine(pipeline.Data, "cut.raw");
        var folder = Path.GetDirectoryName(RemotePath(big))!;
        // Named by the writing process: its host and an id of its own.
        string? Part() => Directory.Exists(folder) ? Directory.EnumerateFiles(folder, $".cut.raw.{TestPipeline.Host}.*.xtelemdb-part").FirstOrDefault() : null;
        var targetDuringCopy = true;
        // Watched on the server's side: once 8 MiB of the part file have landed, every session is cut.
        var cut = Task.Run(async () =>
        {
            while (!(Part() is { } part && new FileInfo(part).Length > 8 << 20))
                await Task.Delay(5);
            targetDuringCopy = File.Exists(RemotePath(big));
            ssh.DropConnections();
        });
        // Written aside and moved in, so only one version exists: any file at the target mid-copy would be partial.
        var staged = Path.Combine(pipeline.Root, "cut.raw");
        Files.Write(staged, 96 << 20, seed: 3);
        File.Move(staged, big);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await cut.WaitAsync(Timeout);

        var row = await pipeline.ReplicatedAsync(Url, big, Timeout);
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(2)), "96 MiB at 40 MB/s, twice in part: the bandwidth limit holds");
        Assert.That(host.Services.GetRequiredService<ReplicaCopier>().Copies, Is.EqualTo(1), "one copy completed, after the cut one failed");
        Assert.That(targetDuringCopy, Is.False, "no file at the target while the copy was under way");
        Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(big)));
        Assert.That(Files.Checksum(RemotePath(big)), Is.EqualTo(Files.Checksum(big)));
        Assert.That(Directory.EnumerateFiles(Path.Combine(ssh.Home, "backup"), "*.xtelemdb-part", SearchOption.AllDirectories), Is.Empty);
    }

    [Test]
    public async Task When_the_host_key_is_unknown_Should_refuse_naming_host_and_fingerprint_and_copy_nothing()
    {
        var empty = Path.Combine(pipeline.Root, "empty_known_hosts");
        File.WriteAllText(empty, "");
        var failure = await FirstCopyFailureAsync(Configure(knownHosts: empty));
        Assert.That(failure, Does.Contain($"the host key of [127.0.0.1]:{ssh.Port} is unknown"));
        Assert.That(failure, Does.Contain(ssh.HostKeyFingerprint));
        Assert.That(Directory.Exists(Path.Combine(ssh.Home, "backup")), Is.False, "nothing was copied");
    }

    [Test]
    public async Task When_the_host_key_changed_Should_refuse_naming_host_and_new_fingerprint()
    {
        await ssh.ChangeHostKeyAsync();
        var failure = await FirstCopyFailureAsync(Configure());
        Assert.That(failure, Does.Contain($"the host key of [127.0.0.1]:{ssh.Port} CHANGED"));
        Assert.That(failure, Does.Contain(ssh.HostKeyFingerprint));
        Assert.That(Directory.Exists(Path.Combine(ssh.Home, "backup")), Is.False, "nothing was copied");
    }

    [Test]
    public async Task When_the_user_key_is_not_authorized_Should_refuse_naming_the_key()
    {
        var stranger = Path.Combine(pipeline.Root, "stranger_key");
        using (var keygen = System.Diagnostics.Process.Start("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]))
            await keygen.WaitForExitAsync();
        var failure = await FirstCopyFailureAsync(Configure(identity: stranger));
        Assert.That(failure, Does.Contain($"refused the key {stranger}"));
    }

    [Test]
    public async Task When_the_original_tools_sftp_backup_of_a_host_known_from_ssh_config_is_imported_Should_trust_import_and_copy_nothing()
    {
        // The operator's own HOME: popeye exists only in ~/.ssh/config, and known_hosts starts empty.
        var home = Path.Combine(pipeline.Root, "operator");
        Directory.CreateDirectory(Path.Combine(home, ".ssh"));
        File.WriteAllText(Path.Combine(home, ".ssh", "config"), $"""
            Host popeye
                HostName 127.0.0.1
                Port {ssh.Port}
                User {ssh.User}
                IdentityFile {ssh.UserKey}

            """);
        File.WriteAllText(Path.Combine(home, ".ssh", "known_hosts"), "");
        var environment = new Dictionary<string, string> { ["HOME"] = home };
        var old = Path.Combine(ssh.Home, "ceph", "magao-x");
        for (var i = 0; i < 30; i++)
            Files.Write(Path.Combine(old, $"exao{i % 3 + 1}", "opt", "MagAOX", "telem", $"d{i % 5}", $"t {i}.bintel"), 200 + i, seed: i);
        Directory.CreateSymbolicLink(Path.Combine(old, "exao1", "opt", "escape"), "/etc");
        await pipeline.StartAsync(pipeline.Configure([]), PipelineServices.Inventory);

        var (exit, output) = await pipeline.RunAsync(environment, "add_replica", "host=popeye", "prefix=ceph/magao-x/", "import_origins=true");
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("the host key of [127.0.0.1]:" + ssh.Port + " is unknown").And.Contain(ssh.HostKeyFingerprint));
        Assert.That(await pipeline.CountAsync("select count(*) from replicas"), Is.Zero, "nothing recorded");

        (exit, output) = await pipeline.RunAsync(environment, "trust_host", "host=popeye");
        Assert.That(exit, Is.EqualTo(2), output);
        Assert.That(output, Does.Contain(ssh.HostKeyFingerprint).And.Contain("not confirmed"));
        (exit, output) = await pipeline.RunAsync(environment, "trust_host", "host=popeye", "--yes");
        Assert.That(exit, Is.Zero, output);
        Assert.That(File.ReadAllText(Path.Combine(home, ".ssh", "known_hosts")), Does.Contain($"[127.0.0.1]:{ssh.Port} ssh-ed25519 "));

        (exit, output) = await pipeline.RunAsync(environment, "add_replica", "host=popeye", "prefix=ceph/magao-x/", "import_origins=true");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("Replica ssh://popeye/ceph/magao-x added"));
        Assert.That(output, Does.Contain("Imported 30 files: 30 new origins, 30 new replica records."));
        Assert.That(output, Does.Contain($"{old}/exao1/opt/escape: a symlink, not followed"));
        Assert.That(await pipeline.CountAsync("""
            select count(*) from file_replicas fr join file_origins o using (origin_host, origin_path)
             where fr.origin_host = 'exao2' and fr.origin_path = '/opt/MagAOX/telem/d0/t 10.bintel' and o.size_bytes = 210
            """), Is.EqualTo(1));

        (exit, output) = await pipeline.RunAsync(environment, "add_replica", "host=popeye", "prefix=ceph/magao-x/", "import_origins=true");
        Assert.That(output, Does.Contain("nothing changed").And.Contain("0 new origins, 0 new replica records"));
        (exit, output) = await pipeline.RunAsync(environment, "sync", "--stall-timeout", "20s");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("In sync: 0 files copied."));
        (exit, output) = await pipeline.RunAsync(environment, "verify", "replica=ssh://popeye/ceph/magao-x");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("30 recorded copies checked").And.Contain("0 missing, 0 different, 0 unrecorded"));
    }

    /// <summary>Writes one file with the pipeline running and returns why its copy failed, from the Fault event.</summary>
    async Task<string> FirstCopyFailureAsync(XtelemdbSettings settings)
    {
        var host = await pipeline.StartAsync(settings, PipelineServices.All);
        var faults = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var bus = host.Services.GetRequiredService<IBus>();
        var listener = bus.ConnectReceiveEndpoint(new TemporaryEndpointDefinition(), KebabCaseEndpointNameFormatter.Instance, e =>
            e.Handler<Fault<ReplicaNeeded>>(context =>
            {
                faults.Enqueue(context.Message.Exceptions[0].Message);
                return Task.CompletedTask;
            }));
        await listener.Ready;
        var path = Path.Combine(pipeline.Data, "refused.dat");
        Files.Write(path, 100);
        await Eventually.True(() => !faults.IsEmpty, Timeout, "the copy to fail");
        Assert.That(await pipeline.ReplicaAsync(Url, path), Is.Null, "no copy recorded");
        faults.TryPeek(out var failure);
        return failure!;
    }
}
