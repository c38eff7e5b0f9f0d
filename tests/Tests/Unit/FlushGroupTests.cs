using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Unit;

/// <summary>Copies in flight together are made durable together; each still succeeds or fails alone.</summary>
public sealed class FlushGroupTests
{
    string root = null!;

    [SetUp]
    public void CreateFolder()
    {
        root = Path.Combine(Path.GetTempPath(), "xt-flush-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(root, recursive: true);

    [Test]
    public async Task When_many_copies_are_in_flight_Should_put_each_whole_in_place_and_fail_only_the_one_that_cannot_be_renamed()
    {
        var sources = Enumerable.Range(0, 60).Select(i => Path.Combine(root, "origin", $"d{i % 3}", $"f{i}.dat")).ToArray();
        for (var i = 0; i < sources.Length; i++)
            Files.Write(sources[i], 500 + 131 * i, seed: i);
        string Target(string source) => Path.Combine(root, "backup") + source;
        // A folder where one target should go: its rename fails, and only its copy.
        var blocked = Target(sources[7]);
        Directory.CreateDirectory(Path.Combine(blocked, "inside"));
        var group = new FlushGroup();

        var copies = sources.Select(source => Task.Run(() => LocalFileCopy.CopyAsync(source, Target(source), null, CancellationToken.None, flushes: group))).ToArray();
        var failure = Assert.ThrowsAsync<IOException>(() => copies[7]);
        Assert.That(failure!.Message, Does.Contain(Path.GetFileName(blocked)));
        for (var i = 0; i < sources.Length; i++)
        {
            if (i == 7)
                continue;
            var copied = await copies[i];
            Assert.That(copied?.Checksum, Is.EqualTo(Files.Checksum(sources[i])));
            Files.AssertSameFile(sources[i], Target(sources[i]));
        }
        Assert.That(Directory.Exists(blocked), "the folder in the way is left as it was");
        Assert.That(Directory.GetFiles(Path.Combine(root, "backup"), "*" + LocalFileCopy.PartSuffix, SearchOption.AllDirectories), Is.Empty,
            "no part file left behind, not even the failed copy's");
        // How many flushes they shared depends on how they overlapped in time: GroupCommitTests shows the grouping itself.
        Assert.That(group.Flushes, Is.Positive);
    }
}
