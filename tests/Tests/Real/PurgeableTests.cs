using System.Text.Json;
using Dapper;
using Npgsql;
using Microsoft.Extensions.Hosting;
using Xtelemdb.Cli;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>xtelemdb purgeable: what the instrument may delete because a local and an SFTP replica hold it.</summary>
[Order(3)] // a long fixture of the fast tier: started first (Parallelism.cs)
public sealed class PurgeableTests : PipelineTest
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    /// <summary>A semester and more ago, to the second, so every side records the same microseconds.</summary>
    static readonly DateTime Old = DateTime.UnixEpoch.AddSeconds((long)(DateTime.UtcNow.AddDays(-200) - DateTime.UnixEpoch).TotalSeconds);
    SshServer? ssh;

    [TearDown]
    public async Task StopSshdAsync()
    {
        if (ssh is not null)
            await ssh.DisposeAsync();
    }

    string Url => $"ssh://{ssh!.User}@127.0.0.1:{ssh.Port}/backup";

    /// <summary>The pipeline copying to a local replica and to an SFTP replica (which takes no *.one file).</summary>
    async Task<(string Backup, XtelemdbSettings Settings, IHost Host)> StartAsync(bool local = true)
    {
        ssh = await SshServer.StartAsync(Path.Combine(pipeline.Root, "sshd"));
        ssh.ReplicaFolder();
        var backup = pipeline.Backup();
        var settings = pipeline.Configure(local ? [backup, Url] : [Url], tables: new Dictionary<string, string>
        {
            [Url] = ssh.ReplicaTable(extra: "exclude = [\"*.one\"]"),
        });
        return (backup, settings, await pipeline.StartAsync(settings, PipelineServices.All));
    }

    /// <summary>Places a finished file in the watched folder (written beside it, then renamed in): the watcher sees one version.</summary>
    string Place(string relative, int size, DateTime mtime, int seed = 1)
    {
        var path = Path.Combine(pipeline.Data, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var staged = Path.Combine(pipeline.Root, "staged");
        Files.Write(staged, size, seed);
        File.SetLastWriteTimeUtc(staged, mtime);
        File.Move(staged, path, overwrite: true);
        return path;
    }

    static string Line(string folder, long files, long bytes) => $"{files}\t{Output.Bytes(bytes)}\t{TestPipeline.Host}:{folder}";

    static JsonElement Json(string output)
    {
        using var json = JsonDocument.Parse(output[output.IndexOf('{')..]);
        return json.RootElement.Clone();
    }

    static string[] Paths(JsonElement json, string array = "files") =>
        json.GetProperty(array).EnumerateArray().Select(f => f.GetProperty("path").GetString()!).Order(StringComparer.Ordinal).ToArray();

    async Task SetChecksumAsync(string replicaUrl, string path, string checksum)
    {
        await using var connection = new NpgsqlConnection(pipeline.Connection);
        await connection.ExecuteAsync("""
            update file_replicas set checksum = @Checksum
             where replica_id = (select id from replicas where url = @Url) and origin_host = @Host and origin_path = @Path
            """, new { Checksum = checksum, Url = replicaUrl, TestPipeline.Host, Path = path });
    }

    [Test]
    public async Task When_files_are_on_a_local_and_an_sftp_replica_Should_list_per_folder_those_two_copies_one_offsite_hold()
    {
        var (backup, _, _) = await StartAsync();
        var cam = Path.Combine(pipeline.Data, "rawimages", "cam");
        var a = Place("rawimages/cam/a.fits", 1000, Old);
        var b = Place("rawimages/cam/b.fits", 2000, Old, seed: 2);
        var c = Place("rawimages/c.fits", 3000, Old, seed: 3);
        var sibling = Place("rawimages2/d.fits", 4000, Old, seed: 4); // a sibling folder whose name starts with "rawimages"
        var young = Place("rawimages/cam/young.fits", 500, DateTime.UtcNow.AddDays(-10), seed: 5);
        var oneCopy = Place("rawimages/cam/local.one", 700, Old, seed: 6); // the SFTP replica excludes *.one
        foreach (var path in new[] { a, b, c, sibling, young, oneCopy })
            await pipeline.ReplicatedAsync(backup, path, Timeout);
        foreach (var path in new[] { a, b, c, sibling, young })
            await pipeline.ReplicatedAsync(Url, path, Timeout);

        var (exit, output) = await pipeline.RunAsync("purgeable");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("Purgeable: the files held by 2 or more copies").And.Contain("1 or more of them over SSH"));
        Assert.That(output, Does.Contain(Line(cam, 2, 3000)), "a and b: not the young file, not the file on one replica");
        Assert.That(output, Does.Contain(Line(Path.Combine(pipeline.Data, "rawimages"), 1, 3000)));
        Assert.That(output, Does.Contain(Line(Path.Combine(pipeline.Data, "rawimages2"), 1, 4000)));
        Assert.That(output, Does.Contain("Total: 4 files, 9.8 KiB (10,000 bytes), in 3 folders."));
        Assert.That(output, Does.Contain("Nothing was deleted."));
        Assert.That(File.Exists(a) && File.Exists(TestPipeline.TargetOf(backup, a)), Is.True, "it lists; it deletes nothing");

        // The young file is held like a and b, and only its age kept it out; the *.one file is old, and only its single copy kept it out.
        (exit, output) = await pipeline.RunAsync("purgeable", "older_than=5d", "copies=1", "offsite=0", "--json");
        Assert.That(exit, Is.Zero, output);
        Assert.That(Paths(Json(output)), Is.EqualTo(new[] { a, b, c, sibling, young, oneCopy }.Order(StringComparer.Ordinal)));

        (exit, output) = await pipeline.RunAsync("purgeable", $"prefix={pipeline.Data}/rawimages", "--json");
        Assert.That(exit, Is.Zero, output);
        Assert.That(Paths(Json(output)), Is.EqualTo(new[] { a, b, c }.Order(StringComparer.Ordinal)), "the folder and below it, not rawimages2");
        (exit, output) = await pipeline.RunAsync("purgeable", $"prefix={pipeline.Data}/rawimages/c.fits", "--json");
        Assert.That(Paths(Json(output)), Is.EqualTo(new[] { c }), "a prefix that is a file names it");

        (exit, output) = await pipeline.RunAsync("purgeable", $"host={TestPipeline.Host}", $"prefix={pipeline.Data}/rawimages/", "--json");
        Assert.That(exit, Is.Zero, output);
        var json = Json(output);
        Assert.That(json.GetProperty("criteria").GetProperty("copies").GetInt32(), Is.EqualTo(2));
        Assert.That(json.GetProperty("criteria").GetProperty("offsite").GetInt32(), Is.EqualTo(1));
        Assert.That(json.GetProperty("criteria").GetProperty("olderThan").GetString(), Is.EqualTo("180d"));
        Assert.That(Paths(json), Is.EqualTo(new[] { a, b, c }.Order(StringComparer.Ordinal)), "a trailing slash changes nothing");
        var first = json.GetProperty("files").EnumerateArray().Single(f => f.GetProperty("path").GetString() == a);
        Assert.That(first.GetProperty("host").GetString(), Is.EqualTo(TestPipeline.Host));
        Assert.That(first.GetProperty("folder").GetString(), Is.EqualTo(cam));
        Assert.That(first.GetProperty("size").GetInt64(), Is.EqualTo(1000));
        Assert.That(first.GetProperty("mtime").GetDateTime().ToUniversalTime(), Is.EqualTo(Old));
        var holders = first.GetProperty("replicas").EnumerateArray()
            .Select(r => (r.GetProperty("replica").GetString(), r.GetProperty("kind").GetString(), r.GetProperty("checksum").GetString())).ToArray();
        Assert.That(holders, Is.EquivalentTo(new[] { (TestPipeline.Named(backup), "local", Files.Checksum(a)), (Url, "ssh", Files.Checksum(a)) }));
        var folders = json.GetProperty("folders").EnumerateArray()
            .Select(f => (f.GetProperty("host").GetString(), f.GetProperty("folder").GetString(), f.GetProperty("files").GetInt64(), f.GetProperty("bytes").GetInt64())).ToArray();
        Assert.That(folders, Is.EquivalentTo(new[]
        {
            (TestPipeline.Host, cam, 2L, 3000L),
            (TestPipeline.Host, Path.Combine(pipeline.Data, "rawimages"), 1L, 3000L),
        }));
        Assert.That(json.GetProperty("total").GetProperty("files").GetInt64(), Is.EqualTo(3));
        Assert.That(json.GetProperty("total").GetProperty("bytes").GetInt64(), Is.EqualTo(6000));
        Assert.That(json.GetProperty("total").GetProperty("folders").GetInt64(), Is.EqualTo(2));
        Assert.That(json.GetProperty("conflicts").GetArrayLength(), Is.Zero);
    }

    [Test]
    public async Task When_the_origin_moved_on_or_two_copies_disagree_Should_not_list_the_file_and_list_a_conflict_apart()
    {
        var (backup, settings, host) = await StartAsync();
        var moved = Place("night/moved.dat", 1000, Old);
        var damaged = Place("night/damaged.dat", 2000, Old, seed: 2);
        var kept = Place("night/kept.dat", 3000, Old, seed: 3);
        foreach (var path in new[] { moved, damaged, kept })
        {
            await pipeline.ReplicatedAsync(backup, path, Timeout);
            await pipeline.ReplicatedAsync(Url, path, Timeout);
        }
        var (exit, output) = await pipeline.RunAsync("purgeable", "--json");
        Assert.That(Paths(Json(output)), Is.EqualTo(new[] { damaged, kept, moved }), output);

        // The origin moves on while no replicator runs: its copies hold a version the instrument no longer has.
        await pipeline.StopAsync(host);
        await pipeline.StartAsync(settings, PipelineServices.Watcher | PipelineServices.Inventory);
        Place("night/moved.dat", 1500, Old.AddDays(1), seed: 9);
        await Eventually.Get(() => pipeline.OriginAsync(moved), o => o?.SizeBytes == 1500, Timeout, "the new version recorded");
        // One copy's checksum is not the other's: one of them is damaged.
        await SetChecksumAsync(backup, damaged, "xxh3:00000000000000000000000000000000");

        (exit, output) = await pipeline.RunAsync("purgeable");
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain(Line(Path.Combine(pipeline.Data, "night"), 1, 3000)), "only kept.dat");
        Assert.That(output, Does.Contain($"CONFLICT: {TestPipeline.Host}:{damaged} (2,000 bytes").And.Contain("its copies disagree: "));
        Assert.That(output, Does.Contain($"{TestPipeline.Named(backup)} xxh3:00000000000000000000000000000000, {Url} {Files.Checksum(damaged)}"));
        Assert.That(output, Does.Contain("1 files are not purgeable because their copies disagree"));

        (exit, output) = await pipeline.RunAsync("purgeable", "--json");
        Assert.That(exit, Is.EqualTo(1), output);
        var json = Json(output);
        Assert.That(Paths(json), Is.EqualTo(new[] { kept }));
        Assert.That(Paths(json, "conflicts"), Is.EqualTo(new[] { damaged }));
        var checksums = json.GetProperty("conflicts")[0].GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("checksum").GetString());
        Assert.That(checksums, Is.EquivalentTo(new[] { "xxh3:00000000000000000000000000000000", Files.Checksum(damaged) }));
    }

    [Test]
    public async Task When_copies_were_imported_Should_count_them_only_once_verify_has_read_and_recorded_their_checksums()
    {
        await StartAsync(local: false);
        var files = new[] { Place("logs/a.log", 1000, Old), Place("logs/b.log", 2000, Old, seed: 2), Place("logs/c.log", 3000, Old, seed: 3) };
        foreach (var path in files)
            await pipeline.ReplicatedAsync(Url, path, Timeout);
        // An older tool's backup of the same files, enrolled as it is: its copies carry no checksum.
        var old = Path.Combine(pipeline.Root, "old");
        foreach (var path in files)
        {
            var copy = Path.Combine(old, TestPipeline.Host) + path;
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(path, copy);
            File.SetLastWriteTimeUtc(copy, Old);
        }
        var (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={old}", "import_origins=true");
        Assert.That(exit, Is.Zero, output);
        Assert.That(await pipeline.CountAsync("select count(*) from file_replicas where checksum is null"), Is.EqualTo(3));

        (exit, output) = await pipeline.RunAsync("purgeable", "--json");
        Assert.That(Paths(Json(output)), Is.Empty, "one counted copy of each: the imported ones carry no checksum");
        (exit, output) = await pipeline.RunAsync("purgeable", "copies=1", "--json");
        Assert.That(Paths(Json(output)), Is.EqualTo(files), "the SFTP copies count");

        // b's old copy is damaged at its size and mtime; c's no longer holds its recorded size.
        var damaged = Path.Combine(old, TestPipeline.Host) + files[1];
        var bytes = await File.ReadAllBytesAsync(damaged);
        bytes[7] ^= 0xff;
        await File.WriteAllBytesAsync(damaged, bytes);
        File.SetLastWriteTimeUtc(damaged, Old);
        var truncated = Path.Combine(old, TestPipeline.Host) + files[2];
        await using (var stream = new FileStream(truncated, FileMode.Open))
            stream.SetLength(10);
        File.SetLastWriteTimeUtc(truncated, Old);

        (exit, output) = await pipeline.RunAsync("verify", $"replica={old}", "checksum=true");
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("3 recorded copies checked (0 checksums; 2 recorded for copies that had none); 0 missing, 1 different"));
        Assert.That(output, Does.Contain($"{truncated}\tdifferent: recorded 3000 bytes"));
        Assert.That((await pipeline.ReplicaAsync(old, files[0]))!.Checksum, Is.EqualTo(Files.Checksum(files[0])));
        Assert.That((await pipeline.ReplicaAsync(old, files[2]))!.Checksum, Is.Null, "a copy that differs from its record gets no checksum");

        (exit, output) = await pipeline.RunAsync("purgeable", "--json");
        Assert.That(exit, Is.EqualTo(1), output);
        var json = Json(output);
        Assert.That(Paths(json), Is.EqualTo(new[] { files[0] }), "a's old copy counts now");
        Assert.That(Paths(json, "conflicts"), Is.EqualTo(new[] { files[1] }), "b's damaged old copy disagrees with the SFTP copy");

        (exit, output) = await pipeline.RunAsync("verify", $"replica={old}", "checksum=true");
        Assert.That(output, Does.Contain("3 recorded copies checked (2 checksums); 0 missing, 1 different"), "recorded once, then compared");
    }

    [Test]
    public async Task When_the_arguments_are_wrong_Should_exit_2_naming_the_bad_one()
    {
        pipeline.Configure([]);
        async Task RefusedAsync(string expected, params string[] arguments)
        {
            var (exit, output) = await pipeline.RunAsync(arguments.Prepend("purgeable").ToArray());
            Assert.That(exit, Is.EqualTo(2), $"{string.Join(' ', arguments)}: {output}");
            Assert.That(output, Does.Contain(expected), string.Join(' ', arguments));
        }
        await RefusedAsync("--older-than: expected a duration such as 180d, 12h or 30m, got \"soon\"", "older_than=soon");
        await RefusedAsync("--older-than: expected a duration such as 180d, 12h or 30m, got \"-5d\"", "older_than=-5d");
        await RefusedAsync("--copies: expected 1 or more copies, got 0", "copies=0");
        await RefusedAsync("--copies: expected 1 or more copies, got -1", "copies=-1");
        await RefusedAsync("--copies", "copies=two");
        await RefusedAsync("--offsite: expected 0 or more copies, got -1", "offsite=-1");
        await RefusedAsync("--offsite: 3 offsite copies is more than --copies 2", "offsite=3");
        await RefusedAsync("--prefix: expected an absolute path such as /opt/MagAOX/rawimages, got \"opt/MagAOX\"", "prefix=opt/MagAOX");
        await RefusedAsync("--host: no file of origin host \"exao9\" is known (no origin file is known yet)", "host=exao9");
        await using (var connection = new NpgsqlConnection(pipeline.Connection))
            await connection.ExecuteAsync("insert into file_origins (origin_host, origin_path, mtime, size_bytes, observed_at) values ('exao1', '/a', now(), 1, now()), ('exao2', '/b', now(), 1, now())");
        await RefusedAsync("--host: no file of origin host \"exao9\" is known; the origin hosts are exao1, exao2", "host=exao9");

        var (exit, help) = await pipeline.RunAsync("purgeable", "--help");
        Assert.That(exit, Is.Zero, help);
        Assert.That(help, Does.Contain("It NEVER deletes anything"));
    }
}
