using System.Net;
using System.Text.Json;
using Xtelemdb.Cli;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>A backup disk that is not mounted gets nothing: the marker at a replica's root says it is there.</summary>
public sealed class ReplicaMarkerTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Test]
    public async Task When_the_backup_disk_is_unmounted_mid_flow_Should_write_nothing_say_why_and_catch_up_after_sync()
    {
        // The "disk": a tmpfs, bind-mounted on the replica's folder as a USB disk would be mounted there.
        var disk = Path.Combine(pipeline.Root, "disk");
        var mountPoint = Path.Combine(pipeline.Root, "mnt-backup");
        Directory.CreateDirectory(disk);
        Directory.CreateDirectory(mountPoint);
        Shell.Run("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk);
        try
        {
            Shell.Run("mount", "--bind", disk, mountPoint);
            var listen = new IPEndPoint(IPAddress.Loopback, Ports.FreeLoopback());
            var settings = pipeline.Configure([mountPoint]);
            settings = settings with { Monitoring = settings.Monitoring with { Listen = listen } };
            // Declared in the TOML file only: registered, not yet written.
            await pipeline.StartAsync(settings, PipelineServices.All);
            var first = Path.Combine(pipeline.Data, "first.dat");
            Files.Write(first, 5000);
            var queue = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(mountPoint));
            var errors = await ErrorsAsync(queue + "_error", 1);
            Assert.That(Management.FaultReason(errors[0]), Does.Contain($"replica {TestPipeline.Named(mountPoint)} is not available: its marker {mountPoint}/.xtelemdb-replica is missing")
                .And.Contain($"run 'xtelemdb add_replica prefix={mountPoint}' once on {TestPipeline.Host}"));
            Assert.That(Directory.EnumerateFileSystemEntries(mountPoint), Is.Empty, "nothing written before add_replica");

            var (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={mountPoint}");
            Assert.That(exit, Is.Zero, output);
            Assert.That(File.Exists(Path.Combine(disk, ReplicaMarker.FileName)), Is.True, "the marker is on the disk");
            Assert.That((await pipeline.RunAsync("sync", "--stall-timeout", "20s")).ExitCode, Is.Zero);
            Files.AssertSameFile(first, (await pipeline.ReplicatedAsync(mountPoint, first)).ReplicaPath);
            await pipeline.Management.PurgeAsync(pipeline.Name, queue + "_error");

            // The disk goes away: a bare mount point, with no marker.
            Shell.Run("umount", mountPoint);
            var second = Path.Combine(pipeline.Data, "second.dat");
            Files.Write(second, 7000);
            errors = await ErrorsAsync(queue + "_error", 1);
            Assert.That(Management.FaultReason(errors[0]), Does.Contain($"its marker {mountPoint}/.xtelemdb-replica is missing (a backup disk not mounted?), so nothing was written"));
            Assert.That(Directory.EnumerateFileSystemEntries(mountPoint), Is.Empty, "nothing written below the bare mount point");

            using var http = new HttpClient();
            var health = await http.GetStringAsync($"http://{listen}/health");
            using (var json = JsonDocument.Parse(health))
            {
                var replicas = json.RootElement.GetProperty("checks").GetProperty("replicas");
                Assert.That(replicas.GetProperty("status").GetString(), Is.EqualTo("Degraded"), health);
                Assert.That(replicas.GetProperty("description").GetString(), Does.Contain($"{TestPipeline.Named(mountPoint)}: its marker {mountPoint}/.xtelemdb-replica is missing"));
            }
            var metrics = await http.GetStringAsync($"http://{listen}/metrics");
            Assert.That(PrometheusText.Sum(metrics, "xtelemdb_replicator_failures_total", "reason=\"unavailable\""), Is.GreaterThanOrEqualTo(2));

            (exit, output) = await pipeline.RunAsync("replica_list");
            Assert.That(exit, Is.Zero, output);
            TestContext.Progress.WriteLine("replica_list with the disk unmounted:\n" + output);
            Assert.That(output, Does.Contain($"UNAVAILABLE: {TestPipeline.Named(mountPoint)}: its marker {mountPoint}/{ReplicaMarker.FileName} is missing"));
            Assert.That(output, Does.Contain($"FAILED: {TestPipeline.Host} -> {TestPipeline.Named(mountPoint)}: 1 requests in {queue}_error"));

            // The disk is back: a sync asks for what is missing, and the replica is whole again.
            Shell.Run("mount", "--bind", disk, mountPoint);
            (exit, output) = await pipeline.RunAsync("sync", "--stall-timeout", "20s");
            Assert.That(exit, Is.Zero, output);
            Files.AssertSameFile(second, (await pipeline.ReplicatedAsync(mountPoint, second)).ReplicaPath);
            Files.AssertSameFile(first, TestPipeline.TargetOf(mountPoint, first));
            (exit, output) = await pipeline.RunAsync("verify", $"replica={mountPoint}", "checksum=true");
            Assert.That(exit, Is.Zero, output);
            Assert.That(output, Does.Contain("2 recorded copies checked (2 checksums); 0 missing, 0 different, 0 unrecorded"));
            await Eventually.True(async () => (await http.GetStringAsync($"http://{listen}/health")).Contains("every replica this replicator writes has its marker"),
                Timeout, "healthy again after a copy found the marker");
        }
        finally
        {
            Shell.Run("umount", "-R", "-l", disk);
            if (Directory.EnumerateFileSystemEntries(mountPoint).Any())
                Shell.Run("umount", "-l", mountPoint);
        }
    }

    Task<IReadOnlyList<System.Text.Json.Nodes.JsonObject>> ErrorsAsync(string queue, int count) =>
        Eventually.Get(async () => await pipeline.Management.PeekAsync(pipeline.Name, queue, 10), m => m?.Count >= count, Timeout, $"{count} messages in {queue}");
}
