namespace Xtelemdb;

/// <summary>
/// Checks run while a message is read, so a malformed one fails alone (and lands in the error
/// queue) before it can spoil a batch of good ones.
/// </summary>
public static class MessageGuard
{
    public static string Host(string value) =>
        value.Length > 0 && value.Length <= 255 && !value.Contains('/') && !value.Contains('\0') && value is not ("." or "..")
            ? value
            : throw new ArgumentException($"not a host name: \"{value}\"");

    /// <summary>Linux's PATH_MAX: no file of an origin can have a longer path.</summary>
    public const int MaxPathBytes = 4096;

    /// <summary>An absolute path with no "." or ".." component: it may not step out of a replica's prefix.</summary>
    public static string OriginPath(string value)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(value) > MaxPathBytes)
            throw new ArgumentException($"a path of {System.Text.Encoding.UTF8.GetByteCount(value)} bytes, longer than any file's ({MaxPathBytes}): \"{value[..64]}…\"");
        if (!value.StartsWith('/') || value.Contains('\0'))
            throw new ArgumentException($"not an absolute path: \"{value}\"");
        if (value.Split('/').Any(part => part is "." or ".."))
            throw new ArgumentException($"a path with a \".\" or \"..\" component: \"{value}\"");
        return value;
    }

    public static IReadOnlyList<T> Count<T>(IReadOnlyList<T>? value, int max, string what, bool allowEmpty = false) =>
        value is { } list && list.Count >= (allowEmpty ? 0 : 1) && list.Count <= max
            ? list
            : throw new ArgumentException($"a list of {value?.Count ?? 0} {what}; expected {(allowEmpty ? 0 : 1)} to {max}");

    public static long Size(long value) =>
        value >= 0 ? value : throw new ArgumentException($"a negative size: {value}");
}
