using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Unit;

/// <summary>
/// Two replicator processes on one host may take requests for one file at once (two consumers
/// of one queue, or a restart that overlaps): neither may put the other's unfinished part file in place.
/// </summary>
public sealed class PartFileTests
{
    string root = null!;

    [SetUp]
    public void CreateFolder()
    {
        // tmpfs where there is one: the test is about interleavings, not about the disk.
        var parent = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        root = Path.Combine(parent, "xt-part-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(root, recursive: true);

    [Test]
    public async Task When_writers_copy_one_file_at_once_Should_only_ever_put_whole_copies_in_place()
    {
        // Each writer copies a version of its own (another size, other bytes) to the same target.
        var sources = Enumerable.Range(0, 4).Select(k => Path.Combine(root, "origin", $"v{k}", "cam.fits")).ToArray();
        for (var k = 0; k < sources.Length; k++)
            Files.Write(sources[k], (1 << 20) + 17 + k * 4099, seed: k);
        var sizes = sources.Select(s => new FileInfo(s).Length).ToHashSet();
        var target = Path.Combine(root, "backup", "cam.fits");
        using var done = new CancellationTokenSource();
        var torn = new List<long>();

        // Every look at the target, from outside, must find one writer's whole copy (or none yet).
        var observer = Task.Run(() =>
        {
            while (!done.IsCancellationRequested)
            {
                // A stat, not an open: .NET's readers take a shared lock, which a writer's part file refuses.
                var copy = new FileInfo(target);
                if (copy.Exists && !sizes.Contains(copy.Length))
                    lock (torn)
                        torn.Add(copy.Length);
            }
        });
        var copied = 0;
        var busy = 0;
        var writers = sources.Select(source => Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                try
                {
                    if (await LocalFileCopy.CopyAsync(source, target, progress: null, CancellationToken.None) is not null)
                        Interlocked.Increment(ref copied);
                }
                catch (IOException)
                {
                    // Refused (the other writer holds the part file): the request is retried later, as a redelivery would be.
                    Interlocked.Increment(ref busy);
                }
            }
        })).ToArray();
        await Task.WhenAll(writers);
        done.Cancel();
        await observer;

        Assert.That(torn, Is.Empty, $"the target was seen with these sizes, none of a whole version ({string.Join(", ", sizes)})");
        Assert.That(copied, Is.GreaterThan(0));
        var final = sources.Single(s => new FileInfo(s).Length == new FileInfo(target).Length);
        Files.AssertSameFile(final, target);
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(target)!), Is.EquivalentTo(new[] { target }), "no part file left behind");
        TestContext.Out.WriteLine($"{copied} copies, {busy} refused as busy");
    }
}
