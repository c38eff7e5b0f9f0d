using Microsoft.Extensions.DependencyInjection;
using Xtelemdb.Cli;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>Load: a burst of files at once, and a folder of 10,000 files renamed.</summary>
public sealed class LoadFaultTests : FaultTest
{
    /// <summary>The full size is 100,000; the suite's default keeps it near two minutes here. XTELEMDB_FAULT_BURST=100000 runs the full size.</summary>
    static int Burst => int.TryParse(Environment.GetEnvironmentVariable("XTELEMDB_FAULT_BURST"), out var n) ? n : 20_000;

    [Test]
    [NonParallelizable] // 20,000 files keep both cores busy: beside other fixtures it missed its 4-minute convergence
    public async Task When_files_arrive_in_one_burst_and_a_folder_of_10000_is_renamed_Should_copy_every_one()
    {
        var backup = pipeline.Backup();
        var host = await pipeline.StartAsync(pipeline.Configure([backup], pollInterval: "30s"), PipelineServices.All);
        var renamedFolder = Path.Combine(pipeline.Data, "night-a");
        // 10,000 of the burst go into the folder renamed afterwards; the rest spread over nested folders.
        var inFolder = await WriteFilesAsync(renamedFolder, Math.Min(10_000, Burst / 2), TimeSpan.Zero);
        var elsewhere = await WriteFilesAsync(Path.Combine(pipeline.Data, "spread"), Burst - inFolder.Count, TimeSpan.Zero);
        var origins = Origins;
        var replicas = new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup };
        await new Audit(pipeline.Connection).PassesAsync(origins, replicas, TimeSpan.FromMinutes(8));

        Directory.Move(renamedFolder, Path.Combine(pipeline.Data, "night-b"));
        var audited = await AuditAsync(pipeline.Connection, origins, replicas);
        Assert.That(audited, Is.EqualTo(Burst));
        // The old names are gone from the origin, marked missing; their copies were renamed to the new names, not copied again.
        await Support.Eventually.True(async () => await pipeline.CountAsync(
                $"select count(*) from file_origins where origin_path like '{renamedFolder}/%' and missing_since is null") == 0,
            TimeSpan.FromMinutes(1), "the old names marked missing (by the next poll at the latest)");
        var moved = inFolder[0].Replace("/night-a/", "/night-b/", StringComparison.Ordinal);
        Assert.That((File.Exists(TestPipeline.TargetOf(backup, inFolder[0])), File.Exists(TestPipeline.TargetOf(backup, moved))), Is.EqualTo((false, true)),
            "the copy moved with its file");
        var copies = host.Services.GetRequiredService<ReplicaCopier>().Copies;
        Record($"{Burst:N0} files in one burst, then a folder of {inFolder.Count:N0} renamed", audited, "load only", copies, Burst);
    }
}
