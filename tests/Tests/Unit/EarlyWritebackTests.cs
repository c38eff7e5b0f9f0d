using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;
using Xtelemdb.Replicator.Copying;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Unit;

/// <summary>
/// A large local copy is sent to the disk a window at a time while it is written (see EarlyWriteback):
/// the copy keeps its bytes and checksum, and a failure of the early writeback fails the copy clearly.
/// </summary>
public sealed class EarlyWritebackTests
{
    const long Window = EarlyWriteback.Window;
    string root = null!;

    [SetUp]
    public void CreateFolder()
    {
        // A disk, not tmpfs: the writeback and the dropping of cached pages are what is tested.
        root = Path.Combine(Path.GetTempPath(), "xt-writeback-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(root, recursive: true);

    [Test]
    public async Task When_a_file_of_several_windows_is_copied_Should_put_its_bytes_mtime_and_checksum_in_place()
    {
        // Three windows written early (the first two waited for and dropped), and a tail that is not a whole chunk.
        const int size = (int)(3 * Window) + (1 << 19) + 4099;
        var source = Path.Combine(root, "origin", "cam.fits");
        Files.Write(source, size, seed: 7);
        var target = Path.Combine(root, "backup", "cam.fits");

        var copied = await LocalFileCopy.CopyAsync(source, target, progress: null, CancellationToken.None);

        Assert.That(copied, Is.Not.Null);
        Assert.That(copied!.Value.Version.Size, Is.EqualTo(size));
        Assert.That(copied.Value.Checksum, Is.EqualTo(Files.Checksum(source)));
        Files.AssertSameFile(source, target);
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(target)!), Is.EquivalentTo(new[] { target }), "no part file left behind");
    }

    [Test]
    public void When_the_early_writeback_fails_Should_fail_the_copy_naming_the_part_file_and_the_bytes()
    {
        // sync_file_range refuses a pipe (ESPIPE): an error the kernel reports, as it reports a disk's write error.
        using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var handle = new SafeFileHandle(pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false);
        const string part = "/backup/exao1/opt/MagAOX/rawimages/.cam.fits.xtelemdb-part";

        var error = Assert.Throws<IOException>(() => EarlyWriteback.Written(handle, part, Window - 100, 200));

        Assert.That(error!.Message, Does.StartWith($"cannot write {part} to the disk at bytes 0-{Window}: "));
        Assert.That(error.HResult, Is.EqualTo(29), "the errno stays as HResult (ESPIPE), as for a full disk (ENOSPC)");
    }

    [Test]
    public void When_a_write_stays_within_a_window_Should_not_call_the_kernel()
    {
        // The same pipe would make any call fail: writes that complete no window make none.
        using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var handle = new SafeFileHandle(pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false);

        Assert.DoesNotThrow(() => EarlyWriteback.Written(handle, "part", 0, 1 << 20));
        Assert.DoesNotThrow(() => EarlyWriteback.Written(handle, "part", Window, Window - 1));
        Assert.Throws<IOException>(() => EarlyWriteback.Written(handle, "part", Window, Window), "a write that ends on a window's end completes it");
    }
}
