using System.IO.Hashing;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Unit;

/// <summary>
/// Large local copies made inside the kernel with copy_file_range keep the guarantees of the read
/// and write path: the bytes and mtime of the source, a checksum of the bytes written, a changed
/// source thrown away, and the read and write path where the kernel cannot copy.
/// </summary>
// Alone: the switch it turns on is the whole process's, and every other local copy would take the kernel path meanwhile.
[NonParallelizable]
public sealed class KernelCopyTests
{
    const int Size = (40 << 20) + 4099; // past one SourceFile look, and not a whole number of chunks
    string root = null!;
    bool enabledBefore;

    [SetUp]
    public void CreateFolder()
    {
        // The path is off by default (XTELEMDB_COPY_FILE_RANGE=1 turns it on): these tests take it.
        enabledBefore = KernelCopy.Enabled;
        KernelCopy.Enabled = true;
        // tmpfs where there is one: the kernel copies there as on a disk, without waiting for one.
        var parent = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        root = Path.Combine(parent, "xt-kcopy-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
    }

    [TearDown]
    public void DeleteFolder()
    {
        KernelCopy.Enabled = enabledBefore;
        Directory.Delete(root, recursive: true);
    }

    [Test]
    public async Task When_a_large_file_is_copied_within_one_file_system_Should_copy_it_in_the_kernel_with_its_bytes_mtime_and_checksum()
    {
        var source = Path.Combine(root, "origin", "cam.fits");
        Files.Write(source, Size);
        File.SetLastWriteTimeUtc(source, new DateTime(2024, 5, 1, 3, 4, 5, DateTimeKind.Utc).AddTicks(1234567));
        var part = Path.Combine(root, "backup", "kernel.part");
        Directory.CreateDirectory(Path.GetDirectoryName(part)!);

        using (var input = SourceFile.Open(source))
        using (var output = File.OpenHandle(part, FileMode.CreateNew, FileAccess.Write))
        {
            var hash = new XxHash3();
            Assert.That(KernelCopy.TryCopy(input, output, part, hash, progress: null, CancellationToken.None), Is.EqualTo(Size),
                "copy_file_range copies within one file system");
            Assert.That(FileChecksum.Format(hash), Is.EqualTo(Files.Checksum(source)));
        }
        // Compared as checksums: NUnit's element-by-element equality took seconds over 40 MiB.
        Assert.That(Files.Checksum(part), Is.EqualTo(Files.Checksum(source)), "the part file's bytes");

        var target = Path.Combine(root, "backup", "cam.fits");
        var offsets = new List<long>();
        var copied = await LocalFileCopy.CopyAsync(source, target, offsets.Add, CancellationToken.None);

        Assert.That(copied, Is.Not.Null);
        Files.AssertSameFile(source, target);
        Assert.That(copied!.Value.Checksum, Is.EqualTo(Files.Checksum(source)));
        Assert.That(copied.Value.Version.Size, Is.EqualTo(Size));
        Assert.That(offsets, Is.Ordered.And.Count.GreaterThan(1), "progress told chunk by chunk");
        Assert.That(offsets[^1], Is.EqualTo(Size));
    }

    [Test]
    public async Task When_the_source_is_rewritten_during_the_copy_Should_throw_the_copy_away()
    {
        var source = Path.Combine(root, "origin", "cam.fits");
        Files.Write(source, Size);
        var target = Path.Combine(root, "backup", "cam.fits");
        var rewritten = false;

        var copied = await LocalFileCopy.CopyAsync(source, target, offset =>
        {
            // Once, after the first chunk: other bytes at the same size, as a camera rewriting a frame.
            if (rewritten)
                return;
            rewritten = true;
            using var stream = new FileStream(source, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            stream.Write(new byte[4096].AsSpan());
        }, CancellationToken.None);

        Assert.That(rewritten, Is.True);
        Assert.That(copied, Is.Null, "a version that changed during its copy is not reported");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(target)!), Is.Empty, "neither the target nor a part file");
    }

    [Test]
    public async Task When_the_source_grows_during_the_copy_Should_abandon_it_at_the_next_look()
    {
        var source = Path.Combine(root, "origin", "run.bintel");
        Files.Write(source, Size);
        var target = Path.Combine(root, "backup", "run.bintel");
        var offsets = new List<long>();

        var copied = await LocalFileCopy.CopyAsync(source, target, offset =>
        {
            if (offsets.Count == 0)
                File.AppendAllText(source, "one more second of telemetry");
            offsets.Add(offset);
        }, CancellationToken.None);

        Assert.That(copied, Is.Null);
        Assert.That(offsets[^1], Is.LessThan(SourceFile.CheckEvery), "stopped at the first look after it grew, not at the end");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(target)!), Is.Empty, "neither the target nor a part file");
    }

    [Test]
    public async Task When_the_source_changes_without_a_new_mtime_Should_record_the_checksum_of_the_bytes_written()
    {
        var source = Path.Combine(root, "origin", "cam.fits");
        Files.Write(source, Size);
        var mtime = File.GetLastWriteTimeUtc(source);
        var target = Path.Combine(root, "backup", "cam.fits");
        var changed = false;

        // Bytes already copied are changed and the mtime put back: no stat can tell, so the copy is
        // kept, and its checksum must be that of the copy, not of the source as it is now.
        var copied = await LocalFileCopy.CopyAsync(source, target, offset =>
        {
            if (changed)
                return;
            changed = true;
            using (var stream = new FileStream(source, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
                stream.Write(Enumerable.Repeat((byte)0xA5, 4096).ToArray());
            File.SetLastWriteTimeUtc(source, mtime);
        }, CancellationToken.None);

        Assert.That(copied, Is.Not.Null);
        Assert.That(copied!.Value.Checksum, Is.EqualTo(Files.Checksum(target)));
        Assert.That(copied.Value.Checksum, Is.Not.EqualTo(Files.Checksum(source)), "the source did change after its bytes were copied");
    }

    [Test]
    public async Task When_source_and_target_are_on_different_file_systems_Should_copy_them_by_reading_and_writing()
    {
        // A tmpfs of its own: copy_file_range between two tmpfs mounts answers EXDEV (the tests run as root, as CI does).
        var other = Path.Combine(root, "other");
        Directory.CreateDirectory(other);
        Shell.Run("mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", other);
        try
        {
            var source = Path.Combine(root, "origin", "cam.fits");
            Files.Write(source, Size);
            var part = Path.Combine(other, "kernel.part");
            using (var input = SourceFile.Open(source))
            using (var output = File.OpenHandle(part, FileMode.CreateNew, FileAccess.Write))
                Assert.That(KernelCopy.TryCopy(input, output, part, new XxHash3(), progress: null, CancellationToken.None), Is.Null,
                    "the kernel cannot copy between these file systems");
            Assert.That(new FileInfo(part).Length, Is.Zero, "nothing copied before falling back");

            var target = Path.Combine(other, "cam.fits");
            var copied = await LocalFileCopy.CopyAsync(source, target, progress: null, CancellationToken.None);

            Assert.That(copied, Is.Not.Null);
            Files.AssertSameFile(source, target);
            Assert.That(copied!.Value.Checksum, Is.EqualTo(Files.Checksum(source)));
        }
        finally
        {
            Shell.Run("umount", "-l", other);
        }
    }
}
