using Xtelemdb.Hosting;

namespace Xtelemdb.Replicator.Copying;

public enum CopyOutcome
{
    /// <summary>The bytes were copied and the target renamed into place.</summary>
    Copied,
    /// <summary>The target already held the source's version: nothing copied.</summary>
    AlreadyCurrent,
    /// <summary>The source is gone (or is no longer a regular file); the watcher reports that.</summary>
    SourceMissing,
    /// <summary>The source changed during every attempt; nothing recorded, the watcher will ask again.</summary>
    SourceChanging,
    /// <summary>The replica no longer selects the file (its selection changed after the request was sent): nothing copied.</summary>
    NotSelected,
    /// <summary>The replica's copy of the file's old path (it was moved on its origin) was renamed to the target: nothing copied.</summary>
    Moved,
}

/// <param name="Version">The source's version as stated before and after the copy.</param>
/// <param name="StatedAt">When the source was last stated at that version.</param>
public sealed record CopyResult(CopyOutcome Outcome, FileVersion Version, string? Checksum, DateTime StatedAt)
{
    /// <summary>The old origin path whose copy on the replica is no longer at its own path (renamed to the target, or gone).</summary>
    public string? MovedFrom { get; init; }
}
