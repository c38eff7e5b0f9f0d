using Xtelemdb.Hosting;

namespace Xtelemdb.Tests.Unit;

/// <summary>Everyone who hands in an item gets its outcome, however the groups fall.</summary>
public sealed class GroupCommitTests
{
    [Test]
    public async Task When_a_waiter_gives_up_and_a_group_holds_one_item_Should_still_commit_every_other_item()
    {
        var gate = new TaskCompletionSource();
        var groups = new List<int[]>();
        var commit = new GroupCommit<int, int>(1, async group =>
        {
            lock (groups)
                groups.Add([.. group.Select(e => e.Item)]);
            await gate.Task;
            foreach (var entry in group)
                entry.Succeed(entry.Item * 10);
        });
        using var giveUp = new CancellationTokenSource();

        // 0 holds the turn; 1 gives up waiting but stays handed in, ahead of the others: each later
        // turn commits the oldest item, so a turn must go on until it has committed its own.
        var first = commit.CommitAsync(0, CancellationToken.None);
        var abandoned = commit.CommitAsync(1, giveUp.Token);
        var others = Enumerable.Range(2, 4).Select(i => commit.CommitAsync(i, CancellationToken.None)).ToArray();
        await giveUp.CancelAsync();
        Assert.CatchAsync<OperationCanceledException>(() => abandoned, "it stopped waiting before the first group ended");
        gate.SetResult();

        Assert.That(await first, Is.Zero);
        Assert.That(await Task.WhenAll(others).WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(new[] { 20, 30, 40, 50 }));
        Assert.That(groups.SelectMany(g => g), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5 }), "each item committed once, oldest first");
    }

    [Test]
    public async Task When_items_are_handed_in_while_a_group_commits_Should_commit_them_all_in_the_next_group()
    {
        var gate = new TaskCompletionSource();
        var groups = new List<int[]>();
        var commit = new GroupCommit<int, int>(100, async group =>
        {
            lock (groups)
                groups.Add([.. group.Select(e => e.Item)]);
            await gate.Task;
            foreach (var entry in group)
                entry.Succeed(entry.Item);
        });

        var first = commit.CommitAsync(0, CancellationToken.None);
        var waiting = Enumerable.Range(1, 5).Select(i => commit.CommitAsync(i, CancellationToken.None)).ToArray();
        gate.SetResult();

        Assert.That(await Task.WhenAll(waiting.Prepend(first)).WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5 }));
        Assert.That(groups, Is.EqualTo(new[] { new[] { 0 }, new[] { 1, 2, 3, 4, 5 } }), "one commit for the five that waited");
    }

    [Test]
    public void When_the_commit_throws_Should_fail_every_item_of_that_group_with_its_error()
    {
        var commit = new GroupCommit<int, int>(10, _ => throw new IOException("the disk is gone"));
        var error = Assert.ThrowsAsync<IOException>(() => commit.CommitAsync(1, CancellationToken.None));
        Assert.That(error!.Message, Is.EqualTo("the disk is gone"));
    }
}
