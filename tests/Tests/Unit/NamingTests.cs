using System.Text.Json;
using Xtelemdb.Cli;
using Xtelemdb.Cli.Commands;
using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Tests.Unit;

public sealed class NamingTests
{
    [Test]
    public void When_the_original_tools_spelling_is_used_Should_rewrite_it_to_options()
    {
        var root = XtelemdbCommand.Create();
        Assert.That(KeyValueArguments.Rewrite(root, ["sync", "continuous=true", "config=/etc/x.toml"]),
            Is.EqualTo(new[] { "sync", "--continuous", "true", "--config", "/etc/x.toml" }));
        Assert.That(KeyValueArguments.Rewrite(root, ["--config", "a=b.toml", "run", "/path/with=equals"]),
            Is.EqualTo(new[] { "--config", "a=b.toml", "run", "/path/with=equals" }), "values are not options");
    }

    [Test]
    public void When_queues_are_named_Should_be_readable_stable_and_distinct()
    {
        var name = Queues.Replicate("exao1", "/mnt/backup");
        Assert.That(name, Does.Match("^replicate-exao1-to-mnt-backup-[0-9a-f]{6}$"));
        Assert.That(Queues.Replicate("exao1", "/mnt/backup"), Is.EqualTo(name));
        Assert.That(Queues.Replicate("exao1", "/mnt-backup"), Is.Not.EqualTo(name), "same slug, other replica");
        Assert.That(Queues.Replicate("exao2", "/mnt/backup"), Is.Not.EqualTo(name));
    }

    [Test]
    public void When_a_replica_is_named_by_hand_Should_find_the_replicas_it_may_have_meant()
    {
        Xtelemdb.Storage.ReplicaRecord Local(string host, string url) => new() { Url = url, Kind = "local", Host = host };
        var replicas = new[] { Local("exao1", "/mnt/backup"), Local("exao2", "/mnt/backup"), Local("exao1", "/data/old-backup"), new() { Url = "ssh://popeye/ceph/backup", Kind = "ssh", Host = "exao1" } };
        string[] Near(string name) => [.. Xtelemdb.Inventory.ReplicaSpellings.Near(name, replicas).Select(r => r.Name)];

        Assert.That(Near("mnt/backup"), Is.EqualTo(new[] { "exao1:/mnt/backup", "exao2:/mnt/backup" }), "a relative path, folder by folder");
        Assert.That(Near("./old-backup/"), Is.EqualTo(new[] { "exao1:/data/old-backup" }));
        Assert.That(Near("backup"), Is.EqualTo(new[] { "exao1:/mnt/backup", "exao2:/mnt/backup", "ssh://popeye/ceph/backup" }), "not old-backup: a whole folder name");
        Assert.That(Near("exao2:/MNT/Backup"), Is.EqualTo(new[] { "exao2:/mnt/backup" }), "a host's folder in another case");
        Assert.That(Near("/"), Is.Empty);
        Assert.That(Xtelemdb.Inventory.ReplicaSpellings.IsRelative("mnt/backup"), Is.True);
        Assert.That(new[] { "/mnt/backup", "exao1:/mnt/backup", "ssh://popeye/x" }.Select(Xtelemdb.Inventory.ReplicaSpellings.IsRelative), Is.All.False);
    }

    [Test]
    public void When_a_fixity_period_is_set_Should_read_every_copy_once_in_it_a_slice_at_a_time()
    {
        var day = TimeSpan.FromDays(1);
        var tick = Xtelemdb.Replicator.Fixity.FixityScheduler.Tick(day);
        Assert.That(tick, Is.EqualTo(TimeSpan.FromMinutes(10)));
        Assert.That(Xtelemdb.Replicator.Fixity.FixityScheduler.Tick(TimeSpan.FromDays(30)), Is.EqualTo(TimeSpan.FromMinutes(10)), "at most 10 minutes apart");
        Assert.That(Xtelemdb.Replicator.Fixity.FixityScheduler.Tick(TimeSpan.FromSeconds(2)), Is.EqualTo(TimeSpan.FromSeconds(1)), "at least a second apart");
        // 144 slices a day of 1,000,000 copies: 6,945 each, so that all are read within the day.
        Assert.That(Xtelemdb.Replicator.Fixity.FixityScheduler.Budget(1_000_000, tick, day), Is.EqualTo(6945));
        Assert.That(Xtelemdb.Replicator.Fixity.FixityScheduler.Budget(1_000_000, tick, day) * 144L, Is.GreaterThanOrEqualTo(1_000_000));
        Assert.That(Xtelemdb.Replicator.Fixity.FixityScheduler.Budget(3, tick, TimeSpan.FromDays(30)), Is.EqualTo(1), "one at least while there are any");
        Assert.That(Xtelemdb.Replicator.Fixity.FixityScheduler.Budget(0, tick, day), Is.Zero);
    }

    [Test]
    public void When_a_time_has_nanoseconds_Should_truncate_to_microseconds_in_UTC()
    {
        var time = new DateTime(2026, 11, 27, 1, 2, 3, DateTimeKind.Utc).AddTicks(1234567);
        Assert.That(Microseconds.Truncate(time).Ticks % 10, Is.Zero);
        Assert.That(Microseconds.Truncate(time), Is.EqualTo(time.AddTicks(-7)));
        Assert.That(Microseconds.Truncate(time).Kind, Is.EqualTo(DateTimeKind.Utc));
    }

    [TestCase("relative/path", "not an absolute path")]
    [TestCase("/opt/../etc/passwd", "a path with a \".\" or \"..\" component")]
    [TestCase("/opt/./x", "a path with a \".\" or \"..\" component")]
    public void When_a_message_names_a_bad_path_Should_fail_to_read(string path, string reason)
    {
        var json = $$"""{"host": "exao1", "path": {{JsonSerializer.Serialize(path)}}, "size": 1}""";
        var error = Assert.Throws<ArgumentException>(() => JsonSerializer.Deserialize<FileChanged>(json, JsonSerializerOptions.Web))!;
        Assert.That(error.Message, Does.Contain(reason));
    }

    [Test]
    public void When_a_file_has_a_target_Should_be_under_prefix_host_and_absolute_path()
    {
        Assert.That(ReplicaTargets.PathFor("/mnt/backup/", "exao1", "/opt/MagAOX/telem/x.bintel"),
            Is.EqualTo("/mnt/backup/exao1/opt/MagAOX/telem/x.bintel"));
        Assert.Throws<UnsafePathException>(() => ReplicaTargets.PathFor("/mnt/backup", "..", "/etc/passwd"));
        Assert.Throws<UnsafePathException>(() => ReplicaTargets.PathFor("/mnt/backup", "exao1", "/a/../../../etc/passwd"));
    }

    [Test]
    public void When_a_folder_under_the_prefix_is_a_symlink_Should_refuse_the_target()
    {
        var root = Path.Combine(Path.GetTempPath(), "xt-link-" + Guid.NewGuid().ToString("N")[..8]);
        var outside = Path.Combine(root, "outside");
        var prefix = Path.Combine(root, "backup");
        Directory.CreateDirectory(outside);
        Directory.CreateDirectory(Path.Combine(prefix, "exao1"));
        Directory.CreateSymbolicLink(Path.Combine(prefix, "exao1", "opt"), outside);
        try
        {
            var target = ReplicaTargets.PathFor(prefix, "exao1", "/opt/x.fits");
            var error = Assert.Throws<UnsafePathException>(() => ReplicaTargets.EnsureInsidePrefix(prefix, target))!;
            Assert.That(error.Message, Does.Contain("is a symlink"));
            Assert.DoesNotThrow(() => ReplicaTargets.EnsureInsidePrefix(prefix, ReplicaTargets.PathFor(prefix, "exao1", "/data/new/x.fits")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
