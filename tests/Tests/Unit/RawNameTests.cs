using Xtelemdb.Watcher;

namespace Xtelemdb.Tests.Unit;

/// <summary>A name that is not UTF-8 is reported by its bytes, and no two names read alike.</summary>
public sealed class RawNameTests
{
    [TestCase(new byte[] { (byte)'c', 0xff, (byte)'.', (byte)'f' }, @"c\xff.f")]
    [TestCase(new byte[] { 0xc3, 0xa9, 0xe9 }, @"é\xe9")] // UTF-8 é kept, a Latin-1 é escaped
    [TestCase(new byte[] { (byte)'\\', (byte)'x', (byte)'f', (byte)'f' }, @"\\xff")] // a real backslash doubled
    [TestCase(new byte[] { 0xe2, 0x82 }, @"\xe2\x82")] // a cut sequence: every byte shown
    public void When_a_name_is_escaped_Should_keep_utf8_and_show_every_other_byte(byte[] name, string expected) =>
        Assert.That(RawNames.Escape(name), Is.EqualTo(expected));
}
