using System.Diagnostics;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>Rule 1 under SIGKILL: a replica path never holds a partial file, and the redelivered request completes the copy.</summary>
[Category("Slow")] // copies a 3 GiB file
[Order(6)] // a long fixture: started first (Parallelism.cs)
public sealed class ReplicatorKilledTests : PipelineTest
{
    [Test]
    public async Task When_the_replicator_is_killed_while_copying_a_3_GiB_file_Should_leave_no_partial_target_and_finish_after_a_restart()
    {
        var backup = pipeline.Backup();
        var settings = pipeline.Configure([backup]);
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory);
        var replicator = pipeline.StartProcess("run", "Replicator");

        // Larger than 2 GiB, sparse, with a few real bytes so that the checksum means something.
        const long size = 3L << 30;
        var path = Path.Combine(pipeline.Data, "big", "sparse.raw");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var staged = Path.Combine(pipeline.Root, "sparse.raw");
        await using (var stream = new FileStream(staged, FileMode.CreateNew))
        {
            stream.SetLength(size);
            foreach (var offset in new[] { 0L, 1L << 30, (2L << 30) + 12345, size - 4096 })
            {
                stream.Position = offset;
                stream.Write(Enumerable.Range(0, 4096).Select(i => (byte)(i * 7 + offset)).ToArray());
            }
        }
        File.Move(staged, path); // one version only: whatever stands at the target mid-copy would be partial

        var target = TestPipeline.TargetOf(backup, path);
        var part = Path.Combine(Path.GetDirectoryName(target)!, ".sparse.raw.xtelemdb-part");
        await Eventually.True(() => File.Exists(part) && new FileInfo(part).Length >= 1 << 20, TimeSpan.FromSeconds(60), "the copy under way");
        Assert.That(File.Exists(target), Is.False, "the copy was still under way when the replicator was killed");
        replicator.Process.Kill(); // SIGKILL
        await replicator.Process.WaitForExitAsync();

        Assert.That(File.Exists(target), Is.False, "no partial file at the target");
        Assert.That(await pipeline.ReplicaAsync(backup, path), Is.Null, "no copy recorded");

        pipeline.StartProcess("run", "Replicator");
        var row = await pipeline.ReplicatedAsync(backup, path, TimeSpan.FromMinutes(3));
        Assert.That(row.SizeBytes, Is.EqualTo(size));
        Files.AssertSameFile(path, target);
        Assert.That(row.Checksum, Is.EqualTo(Files.Checksum(path)));
        Assert.That(File.Exists(part), Is.False, "the killed copy's part file was cleaned up");
    }
}
