namespace Xtelemdb.Tests.Real;

/// <summary>A real-tier test: each test gets a pipeline world of its own (database, virtual host, folders).</summary>
public abstract class PipelineTest
{
    protected TestPipeline pipeline = null!;

    [SetUp]
    public async Task CreatePipelineAsync() => pipeline = await TestPipeline.CreateAsync();

    [TearDown]
    public async Task DisposePipelineAsync() => await pipeline.DisposeAsync();
}
