using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>The replica's side fails: its disk fills up, its SSH host goes down.</summary>
[Order(6)] // a long fault scenario: started first (Parallelism.cs)
public sealed class ReplicaFaultTests : FaultTest
{
    [Test]
    public async Task When_the_replica_disk_fills_up_then_has_room_again_Should_sync_recover_every_file()
    {
        var backup = pipeline.Backup("small-disk");
        Shell.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", backup);
        TestPipeline.Mark(backup);
        try
        {
            await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
            var files = Enumerable.Range(0, 40).Select(i => Path.Combine(pipeline.Data, "raw", $"frame{i:D3}.fits")).ToArray();
            for (var i = 0; i < files.Length; i++)
                Files.Write(files[i], 64 << 10, seed: i);
            var errors = $"{Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup))}_error";
            await Eventually.True(async () => (await pipeline.Management.PeekAsync(pipeline.Name, errors, 100)).Count > 0, TimeSpan.FromSeconds(60),
                "copies that did not fit in the error queue");
            var full = await pipeline.Management.PeekAsync(pipeline.Name, errors, 1);
            Assert.That(full[0]["properties"]!["headers"]!["MT-Fault-Message"]!.GetValue<string>(), Does.Contain($"replica {TestPipeline.Named(backup)} is full"));

            // The operator makes room and asks for what is missing, as the README says.
            Shell.Run("mount", "-o", "remount,size=16m", "tmpfs", backup);
            var (exit, output) = await pipeline.RunAsync("sync");
            Assert.That(exit, Is.Zero, output);
            var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup });
            Assert.That(audited, Is.EqualTo(files.Length));
            Assert.That(Directory.EnumerateFiles(backup, "*.xtelemdb-part", SearchOption.AllDirectories), Is.Empty, "no part file left");
            Record("replica disk full, then room", audited, "1 MiB tmpfs for 2.5 MiB; remount to 16 MiB; operator: xtelemdb sync", null, files.Length);
        }
        finally
        {
            Shell.Run("umount", "-l", backup);
        }
    }

    [Test]
    public async Task When_the_ssh_host_is_down_for_a_minute_Should_copy_everything_after_it_returns()
    {
        await using var ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));
        var url = $"ssh://{ssh.User}@127.0.0.1:{ssh.Port}/backup";
        var remote = ssh.ReplicaFolder();
        var settings = pipeline.Configure([url], tables: new Dictionary<string, string>
        {
            [url] = ssh.ReplicaTable(),
        });
        await pipeline.StartAsync(settings, PipelineServices.All);
        var before = await WriteFilesAsync(pipeline.Data, 100, TimeSpan.Zero);
        await new Audit(pipeline.Connection).PassesAsync(Origins, new Dictionary<string, string> { [url] = remote }, ConvergeTimeout);

        await ssh.StopAsync();
        var during = await WriteFilesAsync(pipeline.Data, 200, TimeSpan.FromMilliseconds(500), prefix: "down");
        await Task.Delay(TimeSpan.FromSeconds(60) - TimeSpan.FromMilliseconds(500 * 4));
        await ssh.StartSshdAsync();

        // Copies that outlasted their retries wait in the error queue: the operator's sync asks for them again.
        var (exit, output) = await pipeline.RunAsync("sync");
        Assert.That(exit, Is.Zero, output);
        var audited = await AuditAsync(pipeline.Connection, Origins, new Dictionary<string, string> { [url] = remote });
        Assert.That(audited, Is.EqualTo(before.Count + during.Count));
        Record("SSH host down for a minute", audited, "sshd killed for 60 s; operator: xtelemdb sync", null, audited);
    }
}
