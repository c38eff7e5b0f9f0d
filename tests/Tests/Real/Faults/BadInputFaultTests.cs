using Dapper;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real.Faults;

/// <summary>Bad input on every queue and on the file system: a clear error naming it, and nothing recorded lost or changed.</summary>
public sealed class BadInputFaultTests : FaultTest
{
    static readonly Dictionary<string, object> MassTransitJson = new() { ["content_type"] = "application/vnd.masstransit+json" };

    async Task<string> SnapshotAsync()
    {
        await using var db = new NpgsqlConnection(pipeline.Connection);
        var origins = await db.QueryAsync<string>("select concat_ws('|', origin_host, origin_path, mtime, size_bytes, missing_since) from file_origins order by 1");
        var replicas = await db.QueryAsync<string>("select concat_ws('|', replica_id, origin_path, mtime, size_bytes, checksum, copied_at) from file_replicas order by 1");
        return string.Join("\n", origins.Concat(replicas));
    }

    async Task<string[]> ErrorsAsync(string queue, int count) =>
        (await Eventually.Get<IReadOnlyList<System.Text.Json.Nodes.JsonObject>>(async () => await pipeline.Management.PeekAsync(pipeline.Name, queue + "_error", 20),
            m => m?.Count >= count, TimeSpan.FromSeconds(60), $"{count} messages in {queue}_error"))
        .Select(e => e["properties"]!["headers"]!["MT-Fault-Message"]?.ToString() ?? "").ToArray();

    [Test]
    public async Task When_each_queue_gets_garbage_an_oversized_or_escaping_message_Should_reject_each_naming_it_and_change_nothing()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        var files = await WriteFilesAsync(pipeline.Data, 50, TimeSpan.Zero);
        var origins = Origins;
        var replicas = new Dictionary<string, string> { [TestPipeline.Named(backup)] = backup };
        await AuditAsync(pipeline.Connection, origins, replicas);
        var before = await SnapshotAsync();

        var replicate = Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup));
        foreach (var queue in new[] { Queues.FileChanged, Queues.ReplicaUpdated, replicate, "resync-requested" })
            await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", queue, "{ this is not json", MassTransitJson);
        var longPath = "/" + new string('a', 10_000);
        await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", Queues.FileChanged, $$$"""
            {"messageType": ["urn:message:Xtelemdb:FileChanged"],
             "message": {"host": "{{{TestPipeline.Host}}}", "path": "{{{longPath}}}", "mtime": "2026-11-27T00:00:00Z", "size": 1, "observedAt": "2030-01-01T00:00:00Z"}}
            """, MassTransitJson);
        // A watcher's list with no file in it, and one over the limit.
        foreach (var count in new[] { 0, FilesChanged.MaxFiles + 1 })
        {
            var list = string.Join(",", Enumerable.Range(0, count).Select(i =>
                $$$"""{"host": "{{{TestPipeline.Host}}}", "path": "/list/f{{{i}}}", "mtime": "2026-11-27T00:00:00Z", "size": 1, "observedAt": "2030-01-01T00:00:00Z"}"""));
            await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", Queues.FileChanged,
                $$$"""{"messageType": ["urn:message:Xtelemdb:FilesChanged"], "message": {"files": [{{{list}}}]}}""", MassTransitJson);
        }
        // A copy request whose path climbs out of the replica's prefix, and one for a host this replicator does not serve.
        await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", replicate, $$$"""
            {"messageType": ["urn:message:Xtelemdb:ReplicaNeeded"],
             "message": {"replicaId": 1, "replicaUrl": "{{{backup}}}", "originHost": "{{{TestPipeline.Host}}}", "originPath": "/data/../../etc/shadow", "mtime": "2026-11-27T00:00:00Z", "size": 1}}
            """, MassTransitJson);
        await pipeline.Management.PublishAsync(pipeline.Name, "amq.default", replicate, $$$"""
            {"messageType": ["urn:message:Xtelemdb:ReplicaNeeded"],
             "message": {"replicaId": 1, "replicaUrl": "{{{backup}}}", "originHost": "exao9", "originPath": "{{{files[0]}}}", "mtime": "2026-11-27T00:00:00Z", "size": 1}}
            """, MassTransitJson);

        var fileChanged = await ErrorsAsync(Queues.FileChanged, 4);
        Assert.That(fileChanged, Has.Some.Contains("a path of 10001 bytes, longer than any file's (4096)"));
        Assert.That(fileChanged, Has.Some.Contains("a list of 0 files; expected 1 to 1000"));
        Assert.That(fileChanged, Has.Some.Contains("a list of 1001 files; expected 1 to 1000"));
        Assert.That(await ErrorsAsync(Queues.ReplicaUpdated, 1), Has.All.Not.Empty);
        Assert.That(await ErrorsAsync("resync-requested", 1), Has.All.Not.Empty);
        var copies = await ErrorsAsync(replicate, 3);
        Assert.That(copies, Has.Some.Contains("a path with a \".\" or \"..\" component: \"/data/../../etc/shadow\""));
        Assert.That(copies, Has.Some.Contains("exao9"));
        TestContext.Out.WriteLine(string.Join("\n", fileChanged.Concat(copies)));

        // The pipeline goes on, and what was recorded is exactly as it was.
        var after = Path.Combine(pipeline.Data, "after.dat");
        Files.Write(after, 2048);
        await pipeline.ReplicatedAsync(backup, after);
        File.Delete(after);
        await Eventually.True(async () => (await pipeline.OriginAsync(after))!.MissingSince is not null, Eventually.Patience, "after.dat marked missing");
        var now = await SnapshotAsync();
        Assert.That(now.Split('\n').Where(l => !l.Contains("/after.dat")), Is.EqualTo(before.Split('\n')), "nothing recorded before was changed");
        Assert.That(File.Exists("/etc/shadow.xtelemdb-part") || Directory.Exists(backup + "/etc"), Is.False, "nothing written outside");
        var audited = await AuditAsync(pipeline.Connection, origins, replicas);
        Record("bad input on every queue", audited, "8 malformed, oversized, empty, escaping or misaddressed messages", null, 0);
    }

    [Test]
    public async Task When_a_file_is_replaced_by_a_folder_Should_name_the_conflict_and_keep_the_old_copy()
    {
        var backup = pipeline.Backup();
        await pipeline.StartAsync(pipeline.Configure([backup]), PipelineServices.All);
        var path = Path.Combine(pipeline.Data, "night", "cube");
        Files.Write(path, 5000, seed: 3);
        await pipeline.ReplicatedAsync(backup, path);

        File.Delete(path);
        var inside = Path.Combine(path, "frame.fits");
        Files.Write(inside, 3000, seed: 4);

        var errors = await ErrorsAsync(Queues.Replicate(TestPipeline.Host, TestPipeline.Named(backup)), 1);
        Assert.That(errors[0], Is.EqualTo($"refusing to copy to {TestPipeline.TargetOf(backup, inside)}: {TestPipeline.TargetOf(backup, path)} is a file, not a folder"));
        // Backups never delete: the old file stays where the new folder would go.
        Assert.That(new FileInfo(TestPipeline.TargetOf(backup, path)).Length, Is.EqualTo(5000));
        await Eventually.True(async () => (await pipeline.OriginAsync(path))!.MissingSince is not null, TimeSpan.FromSeconds(10), "the file marked missing");
        Assert.That(await pipeline.ReplicaAsync(backup, path), Is.Not.Null, "its copy stays recorded");
        TestContext.Out.WriteLine(errors[0]);
    }
}
