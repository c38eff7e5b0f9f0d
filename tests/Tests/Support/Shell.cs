using System.Diagnostics;

namespace Xtelemdb.Tests.Support;

public static class Shell
{
    /// <summary>Runs a program (mount, umount…) and asserts that it succeeded.</summary>
    public static void Run(string program, params string[] arguments)
    {
        using var process = Process.Start(program, arguments);
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.Zero, $"{program} {string.Join(' ', arguments)}");
    }

    /// <summary>What a program (ip…) prints on its standard output.</summary>
    public static string Output(string program, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output;
    }
}
