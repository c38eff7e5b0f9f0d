using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Hosting;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator;
using Xtelemdb.Replicator.ReplicaSet;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Consumers;

/// <summary>The replicator's consumer on MassTransit's in-memory harness, over real files.</summary>
public sealed class CopyFileConsumerTests
{
    const string Host = "exao1";
    string root = null!, data = null!, backup = null!;
    ServiceProvider provider = null!;
    ITestHarness harness = null!;

    [SetUp]
    public async Task StartAsync()
    {
        root = Path.Combine(Path.GetTempPath(), "xt-copy-" + Guid.NewGuid().ToString("N")[..8]);
        data = Path.Combine(root, "data");
        backup = Path.Combine(root, "backup");
        Directory.CreateDirectory(data);
        Directory.CreateDirectory(backup);
        var settings = SettingsLoader.Parse($"host = \"{Host}\"\n[replicas.\"{backup}\"]\n", "test.toml", root);
        provider = new ServiceCollection()
            .AddLogging()
            .AddReplicator(settings)
            .AddPipelineTestHarness()
            .BuildServiceProvider(validateScopes: true);
        harness = provider.GetRequiredService<ITestHarness>();
        harness.TestInactivityTimeout = TimeSpan.FromSeconds(10); // a copy on a loaded machine may be quiet for seconds
        await harness.Start();
        // What add_replica and ReplicaSetLoader do once a real host has started the bus.
        File.WriteAllText(Path.Combine(backup, Replicator.Copying.ReplicaMarker.FileName), "test");
        var directory = provider.GetRequiredService<ReplicaDirectory>();
        directory.Set(7, settings.Replicas[0]);
        await provider.GetRequiredService<ReplicaEndpoints>().ServeAsync(directory.All, CancellationToken.None);
    }

    [TearDown]
    public async Task StopAsync()
    {
        await harness.Stop();
        await provider.DisposeAsync();
        Directory.Delete(root, recursive: true);
    }

    async Task SendAsync(string path, string host = Host, string? replica = null, int replicaId = 7)
    {
        var endpoint = await harness.Bus.GetSendEndpoint(new Uri($"queue:{Queues.Replicate(Host, $"{Host}:{backup}")}"));
        await endpoint.Send(new ReplicaNeeded { ReplicaId = replicaId, ReplicaUrl = replica ?? backup, OriginHost = host, OriginPath = path, Size = 1 });
    }

    [Test]
    public async Task When_a_copy_is_needed_Should_copy_and_report_the_version_and_checksum()
    {
        var path = Path.Combine(data, "frame 0001.fits");
        Files.Write(path, 3 << 20);
        await SendAsync(path);

        Assert.That(await harness.Consumed.Any<ReplicaNeeded>(m => m.Exception is null), Is.True, "consumed without a fault");
        var updated = harness.Sent.Select<ReplicaUpdated>(SoFar.Only).Single().Context.Message;
        var target = backup + "/" + Host + path;
        Assert.Multiple(() =>
        {
            Assert.That(updated.ReplicaId, Is.EqualTo(7));
            Assert.That(updated.ReplicaPath, Is.EqualTo(target));
            Assert.That(updated.Size, Is.EqualTo(3 << 20));
            Assert.That(updated.Mtime, Is.EqualTo(Microseconds.Truncate(File.GetLastWriteTimeUtc(path))));
            Assert.That(updated.Checksum, Is.EqualTo(Files.Checksum(path)));
        });
        Files.AssertSameFile(path, target);
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(target)!), Has.Length.EqualTo(1), "no part file left behind");
    }

    [Test]
    public async Task When_a_list_of_files_is_needed_Should_copy_them_report_one_list_and_send_a_bad_one_back_alone()
    {
        var paths = Enumerable.Range(0, 40).Select(i => Path.Combine(data, "night", $"f{i:000}.dat")).ToArray();
        for (var i = 0; i < paths.Length; i++)
            Files.Write(paths[i], 1000 + 97 * i);
        var fifo = Path.Combine(data, "night", "pipe");
        Shell.Run("mkfifo", fifo);
        var gone = Path.Combine(data, "night", "gone.dat");
        var endpoint = await harness.Bus.GetSendEndpoint(new Uri($"queue:{Queues.Replicate(Host, $"{Host}:{backup}")}"));
        await endpoint.Send(new ReplicasNeeded
        {
            Files = [.. paths.Append(fifo).Append(gone).Select(p => new ReplicaNeeded { ReplicaId = 7, ReplicaUrl = backup, OriginHost = Host, OriginPath = p, Size = 1 })],
        });

        Assert.That(await harness.Consumed.Any<ReplicasNeeded>(m => m.Exception is null), Is.True, "the list consumed without a fault");
        // The FIFO comes back alone, is refused there, and only it faults.
        Assert.That(await harness.Published.Any<Fault<ReplicaNeeded>>(), Is.True);
        Assert.That(harness.Published.Select<Fault<ReplicaNeeded>>(SoFar.Only).Single().Context.Message.Message.OriginPath, Is.EqualTo(fifo));
        var report = harness.Sent.Select<ReplicasUpdated>(SoFar.Only).Single().Context.Message.Files;
        Assert.That(report.Select(u => u.OriginPath), Is.EquivalentTo(paths), "one list for the copies made; nothing for the file gone");
        foreach (var update in report)
        {
            Assert.That(update.Checksum, Is.EqualTo(Files.Checksum(update.OriginPath)));
            Files.AssertSameFile(update.OriginPath, update.ReplicaPath);
        }
        Assert.That(Directory.GetFiles(Path.Combine(backup, Host) + data + "/night"), Has.Length.EqualTo(paths.Length), "no part file left behind");
    }

    [Test]
    public async Task When_two_requests_for_one_file_come_at_once_Should_copy_it_once()
    {
        var path = Path.Combine(data, "twice.fits");
        Files.Write(path, 32 << 20);
        await Task.WhenAll(SendAsync(path), SendAsync(path));

        await Eventually.True(() => harness.Sent.Select<ReplicaUpdated>(SoFar.Only).Count() == 2, TimeSpan.FromSeconds(20), "both requests answered");
        Assert.That(provider.GetRequiredService<Replicator.Copying.ReplicaCopier>().Copies, Is.EqualTo(1));
        Assert.That(harness.Sent.Select<ReplicaUpdated>(SoFar.Only).Select(p => p.Context.Message.Size).Distinct(), Is.EqualTo(new[] { 32L << 20 }));
    }

    [Test]
    public async Task When_the_file_was_removed_before_its_copy_Should_report_nothing_and_not_fault()
    {
        await SendAsync(Path.Combine(data, "vanished.dat"));
        Assert.That(await harness.Consumed.Any<ReplicaNeeded>(m => m.Exception is null), Is.True, "consumed without a fault");
        Assert.That(harness.Sent.Select<ReplicaUpdated>(SoFar.Only), Is.Empty);
    }

    [Test]
    public async Task When_the_request_is_for_another_hosts_files_Should_fault_naming_both_hosts()
    {
        var path = Path.Combine(data, "x.dat");
        Files.Write(path, 10);
        await SendAsync(path, host: "exao2");
        Assert.That(await harness.Published.Any<Fault<ReplicaNeeded>>(), Is.True);
        var fault = harness.Published.Select<Fault<ReplicaNeeded>>(SoFar.Only).Single().Context.Message;
        Assert.That(fault.Exceptions[0].Message, Is.EqualTo(
            "this replicator on exao1 cannot read the files of host exao2: [origins.\"exao2\"] mount in test.toml names where they are mounted"));
        Assert.That(harness.Sent.Select<ReplicaUpdated>(SoFar.Only), Is.Empty);
    }

    [Test]
    public async Task When_the_source_is_a_fifo_Should_fault_at_once_without_opening_it()
    {
        var fifo = Path.Combine(data, "pipe");
        Shell.Run("mkfifo", fifo);
        await SendAsync(fifo);
        Assert.That(await harness.Published.Any<Fault<ReplicaNeeded>>(), Is.True, "a FIFO opened for reading would have blocked the copy slot instead");
        var fault = harness.Published.Select<Fault<ReplicaNeeded>>(SoFar.Only).Single().Context.Message;
        Assert.That(fault.Exceptions[0].Message, Is.EqualTo($"{fifo} is a FIFO, not a regular file: not backed up"));
        Assert.That(harness.Sent.Select<ReplicaUpdated>(SoFar.Only), Is.Empty);
    }

    [Test]
    public async Task When_the_replica_is_not_configured_Should_fault_naming_it()
    {
        var path = Path.Combine(data, "x.dat");
        Files.Write(path, 10);
        await SendAsync(path, replica: "exao9:/mnt/elsewhere", replicaId: 99);
        Assert.That(await harness.Published.Any<Fault<ReplicaNeeded>>(), Is.True);
        var fault = harness.Published.Select<Fault<ReplicaNeeded>>(SoFar.Only).Single().Context.Message;
        Assert.That(fault.Exceptions[0].Message, Does.StartWith("replica exao9:/mnt/elsewhere (id 99) is not one this replicator on exao1 writes"));
    }

    [Test]
    public async Task When_the_target_folder_is_a_symlink_out_of_the_prefix_Should_fault_and_write_nothing_outside()
    {
        var outside = Path.Combine(root, "outside");
        Directory.CreateDirectory(outside);
        Directory.CreateDirectory(backup + "/" + Host);
        Directory.CreateSymbolicLink(backup + "/" + Host + data[..data.IndexOf('/', 1)], outside);
        var path = Path.Combine(data, "x.dat");
        Files.Write(path, 10);

        await SendAsync(path);
        Assert.That(await harness.Published.Any<Fault<ReplicaNeeded>>(), Is.True);
        var fault = harness.Published.Select<Fault<ReplicaNeeded>>(SoFar.Only).Single().Context.Message;
        Assert.That(fault.Exceptions[0].Message, Does.Contain("is a symlink"));
        Assert.That(Directory.EnumerateFileSystemEntries(outside, "*", SearchOption.AllDirectories), Is.Empty);
    }

    [Test]
    public async Task When_a_stale_part_file_was_left_by_a_killed_copy_Should_replace_it()
    {
        var path = Path.Combine(data, "x.dat");
        Files.Write(path, 5000);
        var target = backup + "/" + Host + path;
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(target)!, ".x.dat.xtelemdb-part"), "half a file");

        await SendAsync(path);
        Assert.That(await harness.Sent.Any<ReplicaUpdated>(), Is.True);
        Files.AssertSameFile(path, target);
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(target)!), Has.Length.EqualTo(1));
    }

    [Test]
    public async Task When_the_replica_disk_is_full_Should_fault_naming_the_replica_and_still_copy_what_fits()
    {
        // A 1 MiB file system as the replica (the tests run as root, as CI does).
        Shell.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", backup);
        Real.TestPipeline.Mark(backup);
        try
        {
            var big = Path.Combine(data, "big.fits");
            Files.Write(big, 2 << 20);
            await SendAsync(big);
            Assert.That(await harness.Published.Any<Fault<ReplicaNeeded>>(), Is.True);
            var fault = harness.Published.Select<Fault<ReplicaNeeded>>(SoFar.Only).Single().Context.Message;
            Assert.That(fault.Exceptions[0].Message, Does.StartWith($"replica {Host}:{backup} is full: {backup}/{Host}{big} needs 2097152 bytes"));
            Assert.That(Directory.EnumerateFiles(backup, "*", SearchOption.AllDirectories), Is.EqualTo(new[] { Path.Combine(backup, Replicator.Copying.ReplicaMarker.FileName) }),
                "no part file left, only the marker");

            var small = Path.Combine(data, "small.txt");
            Files.Write(small, 1000);
            await SendAsync(small);
            await Eventually.True(() => harness.Sent.Select<ReplicaUpdated>(SoFar.Only).Any(), TimeSpan.FromSeconds(10), "the small file copied");
            Files.AssertSameFile(small, $"{backup}/{Host}{small}");
        }
        finally
        {
            Shell.Run("umount", "-l", backup);
        }
    }

    [Test]
    public async Task When_the_source_grows_during_a_long_copy_Should_abandon_that_copy_at_once_and_copy_the_new_version()
    {
        var settings = SettingsLoader.Parse($"host = \"{Host}\"\n[replicas.\"{backup}\"]\n", "test.toml", root);
        await using var services = new ServiceCollection().AddLogging().AddReplicator(settings).BuildServiceProvider();
        services.GetRequiredService<ReplicaDirectory>().Set(1, settings.Replicas[0]);
        var copier = services.GetRequiredService<Replicator.Copying.ReplicaCopier>();
        var path = Path.Combine(data, "growing.bintel");
        Files.Write(path, 96 << 20);
        var offsets = new List<long>();
        copier.Progress = (_, bytes) =>
        {
            offsets.Add(bytes);
            if (bytes >= 8 << 20 && new FileInfo(path).Length == 96 << 20)
                File.AppendAllText(path, "one more second of telemetry");
        };

        var (result, target) = await copier.CopyAsync(new ReplicaNeeded { ReplicaId = 1, ReplicaUrl = backup, OriginHost = Host, OriginPath = path, Size = 96 << 20 },
            CancellationToken.None);

        Assert.That(result.Outcome, Is.EqualTo(Replicator.Copying.CopyOutcome.Copied));
        Files.AssertSameFile(path, target);
        var abandonedAt = offsets.TakeWhile((offset, i) => i == 0 || offset >= offsets[i - 1]).Max();
        Assert.That(abandonedAt, Is.LessThanOrEqualTo(Replicator.Copying.SourceFile.CheckEvery + (2 << 20)),
            "the first copy stopped at the first look after the source grew, not at 96 MiB");
        Assert.That(copier.Discarded, Is.EqualTo(1));
    }

    [Test]
    public async Task When_a_copy_outlasts_copy_timeout_Should_fail_naming_the_setting_and_leave_no_part_file()
    {
        var settings = SettingsLoader.Parse($"host = \"{Host}\"\n[replicator]\ncopy_timeout = \"300ms\"\n[replicas.\"{backup}\"]\n", "test.toml", root);
        await using var slow = new ServiceCollection().AddLogging().AddReplicator(settings).BuildServiceProvider();
        var copier = slow.GetRequiredService<Replicator.Copying.ReplicaCopier>();
        slow.GetRequiredService<ReplicaDirectory>().Set(1, settings.Replicas[0]);
        // A replica that writes slowly: each block of the copy waits.
        copier.Progress = (_, _) => Thread.Sleep(50);
        var path = Path.Combine(data, "slow.raw");
        Files.Write(path, 32 << 20);

        var error = Assert.ThrowsAsync<Replicator.Copying.CopyTimeoutException>(() => copier.CopyAsync(
            new ReplicaNeeded { ReplicaId = 1, ReplicaUrl = backup, OriginHost = Host, OriginPath = path, Size = 32 << 20 }, CancellationToken.None));
        Assert.That(error!.Message, Does.Contain($"on replica {Host}:{backup} did not finish within [replicator] copy_timeout (00:00:00.3000000)"));
        Assert.That(Directory.EnumerateFiles(backup, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(Replicator.Copying.ReplicaMarker.FileName, StringComparison.Ordinal)),
            Is.Empty, "no part file left, no copy recorded");
    }
}
