namespace Xtelemdb.Tests.Support;

public static class Repository
{
    /// <summary>The checkout the tests were built from: where compose.yaml and scripts/ are.</summary>
    public static string Root()
    {
        for (var folder = AppContext.BaseDirectory; folder is not null; folder = Path.GetDirectoryName(folder))
        {
            if (File.Exists(Path.Combine(folder, "Pipeline.sln")))
                return folder;
        }
        throw new InvalidOperationException("Pipeline.sln not found above " + AppContext.BaseDirectory);
    }
}
