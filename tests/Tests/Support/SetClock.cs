namespace Xtelemdb.Tests.Support;

/// <summary>A clock the test sets, in UTC: what a bandwidth timetable reads the time of day from.</summary>
public sealed class SetClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
}
