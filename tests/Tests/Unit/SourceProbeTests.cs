using Xtelemdb.Replicator.Copying;

namespace Xtelemdb.Tests.Unit;

/// <summary>A file the replicator does not find is gone only when nothing else can explain it.</summary>
public sealed class SourceProbeTests
{
    string root = null!;

    [SetUp]
    public void CreateFolder()
    {
        root = Path.Combine(Path.GetTempPath(), "xt-probe-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(root, recursive: true);

    [Test]
    public void When_the_file_was_deleted_Should_be_gone()
    {
        Directory.CreateDirectory(Path.Combine(root, "telem"));
        Assert.DoesNotThrow(() => SourceProbe.EnsureGone("exao1", Path.Combine(root, "telem", "gone.bintel"), mount: null));
        Directory.CreateDirectory(Path.Combine(root, "rtc", "opt", "telem"));
        Assert.DoesNotThrow(() => SourceProbe.EnsureGone("rtc", Path.Combine(root, "rtc", "opt", "telem", "gone.bintel"), Path.Combine(root, "rtc")));
    }

    [Test]
    public void When_the_origin_mount_is_empty_or_missing_Should_say_so_instead_of_gone()
    {
        var mount = Path.Combine(root, "srv-rtc");
        Directory.CreateDirectory(mount);
        var error = Assert.Throws<SourceUnavailableException>(() => SourceProbe.EnsureGone("rtc", mount + "/opt/MagAOX/telem/x.bintel", mount))!;
        Assert.That(error.Message, Is.EqualTo($"cannot read rtc's files: their mount {mount} is empty or missing (not mounted?)"));
        Directory.Delete(mount);
        Assert.Throws<SourceUnavailableException>(() => SourceProbe.EnsureGone("rtc", mount + "/opt/MagAOX/telem/x.bintel", mount));
    }

    [Test]
    public void When_a_folder_is_an_absolute_symlink_through_the_mount_Should_name_it()
    {
        // MagAO-X's /opt/MagAOX/rawimages -> /data/rawimages, read over NFS: the link resolves on the reading host's disk.
        var mount = Path.Combine(root, "srv-rtc");
        Directory.CreateDirectory(Path.Combine(mount, "opt", "MagAOX"));
        var link = Path.Combine(mount, "opt", "MagAOX", "rawimages");
        Directory.CreateSymbolicLink(link, Path.Combine(root, "no-such-data"));
        var error = Assert.Throws<SourceUnavailableException>(() => SourceProbe.EnsureGone("rtc", link + "/camwfs/x.xrif", mount))!;
        Assert.That(error.Message, Does.Contain($"{link} is a symlink to {root}/no-such-data, which this host resolves on its own disk, not rtc's"));
    }

    [Test]
    public void When_the_path_is_a_link_Should_be_gone_on_its_own_host_and_unreadable_through_a_mount()
    {
        var link = Path.Combine(root, "dangling.dat");
        File.CreateSymbolicLink(link, Path.Combine(root, "nowhere"));
        Assert.DoesNotThrow(() => SourceProbe.EnsureGone("exao1", link, mount: null), "its watcher reports a file replaced by a link as deleted");
        Assert.That(Assert.Throws<SourceUnavailableException>(() => SourceProbe.EnsureGone("rtc", link, mount: root))!.Message,
            Does.Contain("is not a regular file this replicator can read"));
    }
}
