namespace Xtelemdb.Replicator.Copying;

/// <summary>A copy whose bytes do not hash to what they had to (a repair's source was damaged too): thrown away before it replaced anything.</summary>
public sealed class ChecksumMismatchException(string message) : IOException(message);
