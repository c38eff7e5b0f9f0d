using Xtelemdb.Hosting.Selection;
using Xtelemdb.Hosting.Settings;

namespace Xtelemdb.Tests.Unit;

/// <summary>What a replica selects: glob patterns as .gitignore reads them, over absolute origin paths.</summary>
public sealed class SelectionTests
{
    [TestCase("/opt/MagAOX/telem/**", "/opt/MagAOX/telem/x.bintel", true)]
    [TestCase("/opt/MagAOX/telem/**", "/opt/MagAOX/telem/camwfs/2026_11_27/a b.bintel", true)]
    [TestCase("/opt/MagAOX/telem/**", "/opt/MagAOX/telem", false)]
    [TestCase("/opt/MagAOX/telem/**", "/opt/MagAOX/telemetry/x", false)]
    [TestCase("/opt/MagAOX/telem", "/opt/MagAOX/telem/x", true)]
    [TestCase("/opt/MagAOX/telem/", "/opt/MagAOX/telem/d/x", true)]
    [TestCase("*.tmp", "/opt/MagAOX/logs/a.tmp", true)]
    [TestCase("*.tmp", "/a.tmp", true)]
    [TestCase("*.tmp", "/opt/a.tmpx", false)]
    [TestCase("**/*.tmp", "/opt/x/y/a.tmp", true)]
    [TestCase("/opt/*/telem/*.bintel", "/opt/MagAOX/telem/a.bintel", true)]
    [TestCase("/opt/*/telem/*.bintel", "/opt/MagAOX/x/telem/a.bintel", false)]
    [TestCase("/opt/**/telem/*.bintel", "/opt/telem/a.bintel", true)]
    [TestCase("/opt/**/telem/*.bintel", "/opt/a/b/telem/a.bintel", true)]
    [TestCase("/data/cam?/*", "/data/cam1/f", true)]
    [TestCase("/data/cam?/*", "/data/cam12/f", false)]
    [TestCase("/data/cam[0-3]/*", "/data/cam2/f", true)]
    [TestCase("/data/cam[!0-3]/*", "/data/cam7/f", true)]
    [TestCase("/data/cam[!0-3]/*", "/data/cam2/f", false)]
    [TestCase("/data/a.b (1)+$^|{x}.fits", "/data/a.b (1)+$^|{x}.fits", true)]
    [TestCase("/data/a.b", "/data/axb", false)]
    [TestCase("/données/ü*", "/données/über", true)]
    [TestCase("camsci1", "/opt/MagAOX/rawimages/camsci1/x.xrif", true)]
    [TestCase("/opt/MagAOX/rawimages/camwfs_dark/**", "/opt/MagAOX/rawimages/camwfs_dark/a.xrif", true)]
    [TestCase("/data/2026_11_27/*", "/data/2026_11_27/x", true)]
    [TestCase("/data/a-b~c!d@e#f%g&h=i;j,k'l\"m/*", "/data/a-b~c!d@e#f%g&h=i;j,k'l\"m/x", true)]
    [TestCase("/a/**", "/a/new\nline", true)]
    public void When_a_pattern_is_read_Should_match_as_gitignore_does(string pattern, string path, bool matches) =>
        Assert.That(new ReplicaSelection(null, [pattern], []).Selects("exao1", path), Is.EqualTo(matches), Glob.ToRegex(pattern));

    [Test]
    public void When_hosts_include_and_exclude_are_given_Should_select_their_intersection()
    {
        var selection = new ReplicaSelection(["aoc", "rtc"], ["/opt/MagAOX/telem/**", "/opt/MagAOX/logs/**"], ["**/*.tmp"]);
        Assert.Multiple(() =>
        {
            Assert.That(selection.Selects("aoc", "/opt/MagAOX/telem/x.bintel"), Is.True);
            Assert.That(selection.Selects("rtc", "/opt/MagAOX/logs/x.binlog"), Is.True);
            Assert.That(selection.Selects("icc", "/opt/MagAOX/telem/x.bintel"), Is.False, "another host");
            Assert.That(selection.Selects("aoc", "/opt/MagAOX/rawimages/x.xrif"), Is.False, "not included");
            Assert.That(selection.Selects("aoc", "/opt/MagAOX/logs/x.tmp"), Is.False, "excluded");
            Assert.That(ReplicaSelection.Everything.Selects("any", "/any/path"), Is.True);
        });
    }

    [TestCase("", "an empty pattern")]
    [TestCase("/data/[abc", "an unclosed \"[\" in \"/data/[abc\"")]
    [TestCase("/data/a**b", "\"**\" must be a whole folder name")]
    [TestCase("/data//x", "an empty folder name")]
    public void When_a_pattern_is_bad_Should_say_which_and_why(string pattern, string error) =>
        Assert.That(Assert.Throws<ArgumentException>(() => _ = new ReplicaSelection(null, [], [pattern]))!.Message, Does.StartWith("exclude: ").And.Contain(error));

    [Test]
    public void When_the_toml_file_selects_and_mounts_Should_read_both_and_name_bad_values()
    {
        var folder = Path.Combine(Path.GetTempPath(), "xt-select-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(folder, "backup"));
        Directory.CreateDirectory(Path.Combine(folder, "srv", "rtc"));
        try
        {
            var settings = SettingsLoader.Parse("""
                host = "aoc"
                [origins."rtc"]
                mount = "srv/rtc"
                [replicas."backup"]
                hosts = ["aoc", "rtc"]
                include = ["/opt/MagAOX/telem/**"]
                exclude = ["*.tmp"]
                [replicas."ssh://popeye/ceph/magao-x/"]
                include = ["/opt/MagAOX/logs/**"]
                """, "test.toml", folder);
            Assert.Multiple(() =>
            {
                Assert.That(settings.SourcePath("rtc", "/opt/MagAOX/telem/x"), Is.EqualTo(Path.Combine(folder, "srv", "rtc") + "/opt/MagAOX/telem/x"));
                Assert.That(settings.SourcePath("aoc", "/opt/MagAOX/telem/x"), Is.EqualTo("/opt/MagAOX/telem/x"));
                Assert.That(settings.SourcePath("icc", "/opt/MagAOX/telem/x"), Is.Null, "icc's files are not readable here");
                Assert.That(settings.ReadableHosts, Is.EqualTo(new[] { "aoc", "rtc" }));
                var local = settings.Replicas.Single(r => r.Kind == "local");
                Assert.That((local.Host, local.Name), Is.EqualTo(("aoc", "aoc:" + Path.Combine(folder, "backup"))));
                Assert.That(local.Selection.Hosts, Is.EqualTo(new[] { "aoc", "rtc" }));
                Assert.That(local.Selection.Selects("rtc", "/opt/MagAOX/telem/a.tmp"), Is.False);
                var ssh = settings.Replicas.Single(r => r.Kind == "ssh");
                Assert.That((ssh.Host, ssh.Name), Is.EqualTo(("popeye", "ssh://popeye/ceph/magao-x")), "an ssh:// replica is the SSH host's folder");
            });

            string ErrorOf(string toml) => Assert.Throws<SettingsException>(() => SettingsLoader.Parse(toml, "test.toml", folder))!.Message;
            Assert.That(ErrorOf("[replicas.\"backup\"]\ninclude = [\"/a/[b\"]\n"), Is.EqualTo("test.toml:1: [replicas.\"backup\"]: include: an unclosed \"[\" in \"/a/[b\""));
            Assert.That(ErrorOf("[replicas.\"backup\"]\nhosts = \"aoc\"\n"), Does.StartWith("test.toml:2: [replicas.backup] hosts: expected an array of strings"));
            Assert.That(ErrorOf("[origins.\"rtc\"]\nmount = \"no/such\"\n"), Does.Contain($"the mount {folder}/no/such of rtc's files does not exist"));
            Assert.That(ErrorOf("[origins.\"rtc\"]\npath = \"srv\"\n"), Does.Contain("unknown key; expected mount"));
            Assert.That(ErrorOf("host = \"aoc\"\n[origins.\"aoc\"]\nmount = \"srv\"\n"), Does.Contain("names this machine's own host"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
