using System.Text.Json.Nodes;
using Dapper;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>
/// The rolling fixity check on real replicas: a copy whose bytes rot while its size and mtime stay
/// is found, reported in fixity_error, and repaired only with bytes that hash to its record.
/// </summary>
public sealed class FixityTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Flips one byte in the middle and puts the mtime back: what a bad disk block does.</summary>
    static void Rot(string path, byte mask = 0xff)
    {
        var mtime = File.GetLastWriteTimeUtc(path);
        using (var file = File.Open(path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length / 2;
            var b = file.ReadByte();
            file.Position = file.Length / 2;
            file.WriteByte((byte)(b ^ mask));
        }
        File.SetLastWriteTimeUtc(path, mtime);
    }

    async Task<JsonObject> DamageReportAsync(string replicaPath) =>
        (await Eventually.Get<IReadOnlyList<JsonObject>>(
            async () => (await pipeline.Management.PeekAsync(pipeline.Name, Queues.FixityDamaged, 20))
                .Select(m => JsonNode.Parse(m["payload"]!.GetValue<string>())!.AsObject())
                .Where(m => m["replicaPath"]!.GetValue<string>() == replicaPath).ToArray(),
            m => m?.Count > 0, Timeout, $"a report of {replicaPath} in {Queues.FixityDamaged}"))[0];

    async Task<(DateTime? CheckedAt, DateTime? DamagedAt)> FixityRecordAsync(string originPath)
    {
        await using var connection = new NpgsqlConnection(pipeline.Connection);
        return await connection.QuerySingleAsync<(DateTime?, DateTime?)>(
            "select checked_at, damaged_at from file_replicas fr join replicas r on r.id = fr.replica_id where fr.origin_path = @Path and (r.url like '%/rotting' or r.kind = 'ssh')",
            new { Path = originPath });
    }

    /// <summary>
    /// A file copied to two replicas by a replicator that then stops, so that the rot happens while
    /// nothing checks; only "rotting" is checked once a replicator runs again.
    /// </summary>
    async Task<(string Rotting, string Sound, Xtelemdb.Hosting.Settings.XtelemdbSettings Settings, string File)> CopiedToTwoReplicasAsync(int seed)
    {
        var (rotting, sound, settings) = TwoReplicas();
        var file = Path.Combine(pipeline.Data, "night", "cam.fits");
        Files.Write(file, 300_000, seed);
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory);
        var replicator = await pipeline.StartAsync(settings, PipelineServices.Replicator);
        await pipeline.ReplicatedAsync(rotting, file);
        await pipeline.ReplicatedAsync(sound, file);
        await pipeline.StopAsync(replicator);
        return (rotting, sound, settings, file);
    }

    (string Rotting, string Sound, Xtelemdb.Hosting.Settings.XtelemdbSettings Settings) TwoReplicas()
    {
        var rotting = pipeline.Backup("rotting");
        var sound = pipeline.Backup("sound");
        var settings = pipeline.Configure([rotting, sound], tables: new Dictionary<string, string>
        {
            [rotting] = "fixity_period = \"2s\"",
            [sound] = "fixity_period = \"off\"",
        });
        return (rotting, sound, settings);
    }

    [Test]
    public async Task When_a_copy_rots_and_its_origin_is_gone_Should_report_it_and_repair_it_from_another_replica()
    {
        var (rotting, sound, settings, file) = await CopiedToTwoReplicasAsync(seed: 3);
        var copy = TestPipeline.TargetOf(rotting, file);
        var recorded = Files.Checksum(copy);
        File.Delete(file); // the origin is gone: only the other replica holds the bytes
        Rot(copy);

        await pipeline.StartAsync(settings, PipelineServices.Replicator);
        var report = await DamageReportAsync(copy);
        Assert.That(report["recordedChecksum"]!.GetValue<string>(), Is.EqualTo(recorded));
        Assert.That(report["foundChecksum"]!.GetValue<string>(), Is.Not.EqualTo(recorded));
        Assert.That(report["repairedFrom"]!.GetValue<string>(), Is.EqualTo(TestPipeline.Named(sound)));
        Assert.That(Files.Checksum(copy), Is.EqualTo(recorded), "the recorded bytes are back");
        Files.AssertSameFile(TestPipeline.TargetOf(sound, file), copy);
        var (checkedAt, damagedAt) = await FixityRecordAsync(file);
        Assert.That(checkedAt, Is.Not.Null, "checked now");
        Assert.That(damagedAt, Is.Null);
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(copy)!), Is.EquivalentTo(new[] { copy }), "no part file left");
    }

    [Test]
    public async Task When_no_copy_holds_the_recorded_bytes_Should_leave_the_damaged_copy_as_it_is_and_say_so()
    {
        var (rotting, sound, settings, file) = await CopiedToTwoReplicasAsync(seed: 4);
        var copy = TestPipeline.TargetOf(rotting, file);
        var recorded = Files.Checksum(copy);
        File.Delete(file);
        Rot(copy, 0x01);
        Rot(TestPipeline.TargetOf(sound, file), 0x02); // the other copy rotted too, differently
        var damaged = File.ReadAllBytes(copy);

        await pipeline.StartAsync(settings, PipelineServices.Replicator);
        var report = await DamageReportAsync(copy);
        Assert.That(report["repairedFrom"], Is.Null, "nothing here holds the recorded bytes");
        Assert.That(report["recordedChecksum"]!.GetValue<string>(), Is.EqualTo(recorded));
        await Eventually.True(async () => (await FixityRecordAsync(file)).DamagedAt is not null, Timeout, "recorded as damaged");
        Assert.That(File.ReadAllBytes(copy), Is.EqualTo(damaged), "never overwritten with the other copy's wrong bytes");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(copy)!), Is.EquivalentTo(new[] { copy }), "no part file left");
    }

    [Test]
    public async Task When_a_copy_on_an_sftp_replica_rots_Should_repair_it_from_the_origin_with_the_recorded_bytes()
    {
        await using var ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));
        ssh.ReplicaFolder();
        var url = $"ssh://{ssh.User}@127.0.0.1:{ssh.Port}/backup";
        var settings = pipeline.Configure([url], tables: new Dictionary<string, string> { [url] = ssh.ReplicaTable(extra: "fixity_period = \"2s\"") });
        var file = Path.Combine(pipeline.Data, "telem", "a.bintel");
        Files.Write(file, 200_000, seed: 6);
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory);
        var replicator = await pipeline.StartAsync(settings, PipelineServices.Replicator);
        await pipeline.ReplicatedAsync(url, file);
        await pipeline.StopAsync(replicator);
        var copy = Path.Combine(ssh.Home, "backup", TestPipeline.Host) + file;
        var recorded = Files.Checksum(copy);
        Rot(copy);

        await pipeline.StartAsync(settings, PipelineServices.Replicator);
        var report = await DamageReportAsync(copy);
        Assert.That(report["repairedFrom"]!.GetValue<string>(), Is.EqualTo($"the origin {TestPipeline.Host}:{file}"));
        Assert.That(Files.Checksum(copy), Is.EqualTo(recorded));
        Assert.That(File.ReadAllBytes(copy), Is.EqualTo(File.ReadAllBytes(file)));
    }
}
