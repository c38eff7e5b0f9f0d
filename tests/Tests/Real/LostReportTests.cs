using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>A copy renamed into place whose report the broker lost, asked for again once its source was deleted.</summary>
public sealed class LostReportTests : PipelineTest
{
    static FileChanged Seen(string path) => new()
    {
        Host = TestPipeline.Host, Path = path, Mtime = File.GetLastWriteTimeUtc(path), Size = new FileInfo(path).Length, ObservedAt = DateTime.UtcNow,
    };

    [Test]
    public async Task When_a_copy_s_report_was_lost_and_its_source_then_deleted_Should_record_the_copy_the_replica_holds()
    {
        var backup = pipeline.Backup();
        // The inventory and the replicator; the test plays the watcher, so that nothing reports the deletion before the request.
        var host = await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.Inventory | PipelineServices.Replicator);
        var bus = host.Services.GetRequiredService<IBus>();
        var path = Path.Combine(pipeline.Data, "short.dat");
        Files.Write(path, 94208);
        await bus.Publish(Seen(path));
        await Eventually.True(async () => (await pipeline.ReplicaAsync(backup, path))?.SizeBytes == 94208, Eventually.Patience, "the first version copied and recorded");

        // The second version in place on the replica, as its copy left it, but not recorded: the record names the first.
        Files.Write(path, 3859);
        var target = TestPipeline.TargetOf(backup, path);
        File.Copy(path, target, overwrite: true);
        File.SetLastWriteTimeUtc(target, File.GetLastWriteTimeUtc(path));
        var second = Seen(path);
        File.Delete(path);
        await bus.Publish(second); // the second version's request, asked again after the source was deleted

        var row = await Eventually.Get(() => pipeline.ReplicaAsync(backup, path), r => r?.SizeBytes == 3859, Eventually.Patience, "the copy the replica holds recorded");
        Assert.Multiple(() =>
        {
            Assert.That(row!.Checksum, Is.EqualTo(Files.Checksum(target)));
            Assert.That(row.Mtime, Is.EqualTo(second.Mtime));
        });
    }
}
