using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Xtelemdb.Tests.Support;

/// <summary>A log provider that keeps every line a host writes, for a test to look for the one an operator would read.</summary>
public sealed class CapturedLog : ILoggerProvider
{
    public sealed record Line(LogLevel Level, string Category, string Message);

    readonly ConcurrentQueue<Line> lines = new();

    public IReadOnlyList<Line> Lines => [.. lines];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    sealed class Logger(CapturedLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
                log.lines.Enqueue(new Line(logLevel, category, formatter(state, exception)));
        }
    }
}
