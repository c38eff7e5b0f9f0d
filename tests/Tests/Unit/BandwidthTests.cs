using System.Diagnostics;
using Xtelemdb.Hosting.Settings;
using Xtelemdb.Replicator.Sftp;
using Xtelemdb.Tests.Support;

namespace Xtelemdb.Tests.Unit;

public sealed class BandwidthTests
{
    static DateTime At(DayOfWeek day, int hour, int minute) =>
        new DateTime(2026, 11, 22, hour, minute, 0).AddDays((int)day); // 22 November 2026 is a Sunday

    [Test]
    public void When_a_daily_timetable_is_read_Should_hold_each_entry_until_the_next_and_wrap_past_midnight()
    {
        var schedule = BandwidthSchedule.Parse("08:00, 20MB/s  20:00,off");
        Assert.Multiple(() =>
        {
            Assert.That(schedule.RateAt(At(DayOfWeek.Tuesday, 7, 59)), Is.Null, "before 08:00, the evening's off still holds");
            Assert.That(schedule.RateAt(At(DayOfWeek.Tuesday, 8, 0)), Is.EqualTo(20_000_000));
            Assert.That(schedule.RateAt(At(DayOfWeek.Tuesday, 19, 59)), Is.EqualTo(20_000_000));
            Assert.That(schedule.RateAt(At(DayOfWeek.Tuesday, 20, 0)), Is.Null);
            Assert.That(schedule.RateAt(At(DayOfWeek.Sunday, 0, 0)), Is.Null, "the week wraps: Saturday 20:00 holds into Sunday");
        });
    }

    [Test]
    public void When_a_weekly_timetable_names_days_Should_hold_across_days_as_rclone_does()
    {
        var schedule = BandwidthSchedule.Parse("Mon-08:00,512k Sat-00:00,off");
        Assert.Multiple(() =>
        {
            Assert.That(schedule.RateAt(At(DayOfWeek.Monday, 7, 0)), Is.Null, "Sunday is off, until Monday 08:00");
            Assert.That(schedule.RateAt(At(DayOfWeek.Wednesday, 23, 0)), Is.EqualTo(512 << 10), "rclone's k is KiB/s");
            Assert.That(schedule.RateAt(At(DayOfWeek.Saturday, 12, 0)), Is.Null);
        });
    }

    [TestCase("50MB/s", 50_000_000L)]
    [TestCase("10MiB/s", 10L << 20)]
    [TestCase("10M", 10L << 20)]
    [TestCase("800KB/s", 800_000L)]
    [TestCase("50 MB/s", 50_000_000L)]
    public void When_a_single_rate_is_read_Should_hold_all_week(string text, long rate)
    {
        var schedule = BandwidthSchedule.Parse(text);
        Assert.That(Enum.GetValues<DayOfWeek>().Select(d => schedule.RateAt(At(d, 3, 0))), Is.All.EqualTo(rate));
    }

    [Test]
    public async Task When_the_clock_passes_the_next_entry_Should_wait_for_tokens_before_it_and_not_after()
    {
        var clock = new SetClock(new DateTimeOffset(2026, 11, 24, 12, 0, 0, TimeSpan.Zero));
        var limit = new BandwidthLimit(BandwidthSchedule.Parse("08:00,1MB/s 20:00,off"), clock);
        Assert.That(limit.RateNow, Is.EqualTo(1_000_000));
        var watch = Stopwatch.StartNew();
        // The bucket starts empty: 500 kB at 1 MB/s is half a second's wait.
        await limit.TakeAsync(500_000, CancellationToken.None);
        Assert.That(watch.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(450)), "limited at noon");

        clock.Now = new DateTimeOffset(2026, 11, 24, 20, 0, 0, TimeSpan.Zero);
        Assert.That(limit.RateNow, Is.Null);
        // Off: a hundred megabytes cost no wait at all, so the take completes before it returns.
        var unlimited = limit.TakeAsync(100_000_000, CancellationToken.None);
        Assert.That(unlimited.IsCompletedSuccessfully, Is.True, "no limit from 20:00");
    }
}
