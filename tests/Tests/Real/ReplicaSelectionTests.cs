using System.Text.Json;
using Dapper;
using Npgsql;
using Xtelemdb.Cli;
using Xtelemdb.Hosting.Selection;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Real;

/// <summary>A replica selects origin hosts and paths; the selection changes at run time.</summary>
public sealed class ReplicaSelectionTests : PipelineTest
{
    static readonly TimeSpan Timeout = Eventually.Patience;

    async Task<JsonElement> ListedAsync(string replica)
    {
        var listed = await pipeline.RunAsync("replica_list", "--json");
        Assert.That(listed.ExitCode, Is.Zero, listed.Output);
        using var json = JsonDocument.Parse(listed.StandardOutput);
        return json.RootElement.EnumerateArray().Single(r => r.GetProperty("url").GetString() == replica).Clone();
    }

    [Test]
    public async Task When_a_replica_selects_paths_Should_receive_only_those_and_follow_a_changed_selection()
    {
        var all = pipeline.Backup("all");
        var offsite = pipeline.Backup("offsite");
        var settings = pipeline.Configure([all, offsite], tables: new Dictionary<string, string>
        {
            [all] = "local = true",
            [offsite] = $"hosts = [\"{TestPipeline.Host}\"]\ninclude = [\"{pipeline.Data}/telem/**\"]\nexclude = [\"*.tmp\"]",
        });
        await pipeline.StartAsync(settings, PipelineServices.All);
        var telem = Path.Combine(pipeline.Data, "telem", "a.bintel");
        var scratch = Path.Combine(pipeline.Data, "telem", "b.tmp");
        var raw = Path.Combine(pipeline.Data, "rawimages", "c.xrif");
        foreach (var path in new[] { telem, scratch, raw })
            Files.Write(path, 2000);
        foreach (var path in new[] { telem, scratch, raw })
            await pipeline.ReplicatedAsync(all, path);
        await pipeline.ReplicatedAsync(offsite, telem);

        // The database itself says nothing else is owed to it: only selected files are counted, and requested.
        var listed = await ListedAsync(offsite);
        Assert.That((listed.GetProperty("filesInSync").GetInt64(), listed.GetProperty("filesBehind").GetInt64()), Is.EqualTo((1L, 0L)));
        Assert.That(File.Exists(TestPipeline.TargetOf(offsite, raw)) || File.Exists(TestPipeline.TargetOf(offsite, scratch)), Is.False);

        // At run time: the raw images instead of the telemetry. The new ones are back-filled, the old copy stays.
        var (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={offsite}", $"include={pipeline.Data}/rawimages/**");
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("now selects hosts all; include " + pipeline.Data + "/rawimages/**; exclude none"));
        Files.AssertSameFile(raw, (await pipeline.ReplicatedAsync(offsite, raw)).ReplicaPath);
        var later = Path.Combine(pipeline.Data, "telem", "d.bintel");
        Files.Write(later, 3000);
        await pipeline.ReplicatedAsync(all, later);
        listed = await ListedAsync(offsite);
        Assert.That((listed.GetProperty("filesInSync").GetInt64(), listed.GetProperty("filesBehind").GetInt64()), Is.EqualTo((1L, 0L)),
            "only the raw image is selected now, and it is in sync: d.bintel is not owed");
        Assert.That(await pipeline.ReplicaAsync(offsite, telem), Is.Not.Null, "a deselected file keeps its record");
        Assert.That(File.Exists(TestPipeline.TargetOf(offsite, telem)), Is.True, "and its copy");

        (exit, output) = await pipeline.RunAsync("add_replica", $"prefix={offsite}", "include=/data/[oops");
        Assert.That(exit, Is.EqualTo(2), output);
        Assert.That(output, Does.Contain("the replica's selection: include: an unclosed \"[\" in \"/data/[oops\""));
    }

    [Test]
    public async Task When_patterns_are_translated_Should_PostgreSQL_and_dotnet_agree()
    {
        pipeline.Configure([]);
        Xtelemdb.Storage.InventoryDatabase.Migrate(new Hosting.Settings.DatabaseSettings(pipeline.Connection), TestPipeline.Host);
        string[] patterns = ["/opt/MagAOX/telem/**", "*.tmp", "/opt/**/telem/*.bintel", "/data/cam[!0-3]/*", "/data/a.b (1)+$^|{x}.fits", "/données/ü*", "camsci1",
            "/opt/camwfs_dark/**", "/data/a-b~c!d@e#f%g&h=i;j,k'l\"m/*", "/a/**"];
        string[] paths = ["/opt/MagAOX/telem/x.bintel", "/opt/telem/a.bintel", "/opt/a/b/telem/a.bintel", "/a.tmp", "/opt/a.tmpx", "/data/cam7/f",
            "/data/cam2/f", "/data/a.b (1)+$^|{x}.fits", "/data/axb (1)+$^|{x}.fits", "/données/über", "/opt/MagAOX/rawimages/camsci1/x.xrif", "/opt/MagAOX/telem",
            "/opt/camwfs_dark/a", "/opt/camwfsxdark/a", "/data/a-b~c!d@e#f%g&h=i;j,k'l\"m/x", "/a/new\nline", "/a/b/c"];
        await using var connection = new NpgsqlConnection(pipeline.Connection);
        foreach (var pattern in patterns)
        {
            var selection = new ReplicaSelection(null, [pattern], []);
            foreach (var path in paths)
            {
                var inSql = await connection.ExecuteScalarAsync<bool>("select @Path ~ @Regex", new { Path = path, Regex = selection.IncludeRegex });
                Assert.That(inSql, Is.EqualTo(selection.Selects("h", path)), $"{pattern} on {path} ({selection.IncludeRegex})");
            }
        }
    }
}
