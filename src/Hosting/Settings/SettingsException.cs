namespace Xtelemdb.Hosting.Settings;

/// <summary>A configuration that cannot be used; the message names the file, line and key.</summary>
public sealed class SettingsException(string message) : Exception(message);
