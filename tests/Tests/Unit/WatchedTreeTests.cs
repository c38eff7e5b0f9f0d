using Xtelemdb.Hosting;
using Xtelemdb.Watcher;

namespace Xtelemdb.Tests.Unit;

/// <summary>What the watcher believes it has published decides what it reports again.</summary>
public sealed class WatchedTreeTests
{
    static readonly FileVersion Version = new(new DateTime(2026, 11, 27, 0, 0, 0, DateTimeKind.Utc), 100);

    [Test]
    public void When_a_publish_failed_after_the_broker_took_it_Should_still_report_the_files_deletion_and_send_it_again()
    {
        var tree = new WatchedTree();
        // The torture test's case: the broker stored the list, then died before confirming it.
        tree.MaybePublished("/data/night/f2.dat");

        Assert.That(tree.IsKnown("/data/night/f2.dat"), Is.True, "a file replaced by a folder is reported gone only if known");
        var poll = tree.BeginPoll();
        Assert.That(tree.Seen("/data/night/f2.dat", poll, Version), Is.True, "the next poll sends the version again");
        tree.Published("/data/night/f2.dat", Version);
        Assert.That(tree.Differs("/data/night/f2.dat", Version), Is.False);

        var next = tree.BeginPoll();
        Assert.That(tree.NotSeenSince(next, ["/data"]), Is.EqualTo(new[] { "/data/night/f2.dat" }), "gone from the next poll: its deletion is reported");
    }

    [Test]
    public void When_a_file_was_never_published_Should_not_report_it_gone()
    {
        var tree = new WatchedTree();
        var poll = tree.BeginPoll();
        Assert.That(tree.IsKnown("/data/night/f2.dat"), Is.False);
        Assert.That(tree.NotSeenSince(poll, ["/data"]), Is.Empty);
    }

    [Test]
    public void When_a_published_version_faults_Should_report_it_again_unless_a_later_one_was_published()
    {
        var tree = new WatchedTree();
        tree.Published("/data/night/f.dat", Version);
        var newer = Version with { Size = 200 };

        Assert.That(tree.Forget("/data/night/f.dat", newer), Is.False, "an older list's fault, after a newer version was published");
        Assert.That(tree.Differs("/data/night/f.dat", Version), Is.False);

        Assert.That(tree.Forget("/data/night/f.dat", Version), Is.True);
        Assert.That(tree.Differs("/data/night/f.dat", Version), Is.True, "the live re-check sends it again");
        Assert.That(tree.Seen("/data/night/f.dat", tree.BeginPoll(), Version), Is.True, "and so would the next poll");
    }

    [Test]
    public void When_a_deletion_faults_Should_report_it_again_unless_the_file_was_published_since()
    {
        var tree = new WatchedTree();
        Assert.That(tree.Forget("/data/night/gone.dat", null), Is.True);
        Assert.That(tree.IsKnown("/data/night/gone.dat"), Is.True, "known again, so its deletion is reported");
        Assert.That(tree.NotSeenSince(tree.BeginPoll(), ["/data"]), Is.EqualTo(new[] { "/data/night/gone.dat" }));

        tree.Published("/data/night/back.dat", Version);
        Assert.That(tree.Forget("/data/night/back.dat", null), Is.False, "the file came back and was published since");
        Assert.That(tree.Differs("/data/night/back.dat", Version), Is.False);
    }
}
