namespace Xtelemdb;

/// <summary>
/// Every time in the system is UTC at microsecond precision, the precision PostgreSQL keeps:
/// a nanosecond mtime truncated differently on two sides would mean endless recopies.
/// </summary>
public static class Microseconds
{
    public static DateTime Truncate(DateTime value)
    {
        var utc = value.Kind switch
        {
            DateTimeKind.Utc => value,
            DateTimeKind.Local => value.ToUniversalTime(),
            _ => DateTime.SpecifyKind(value, DateTimeKind.Utc),
        };
        return new DateTime(utc.Ticks - utc.Ticks % 10, DateTimeKind.Utc);
    }
}
