using Microsoft.Playwright;

namespace Xtelemdb.Tests.Support;

/// <summary>A message as the management UI's "Get messages" shows it: its payload, its properties, and its headers.</summary>
public sealed record ShownMessage(string Payload, string Properties, IReadOnlyDictionary<string, string> Headers);

/// <summary>
/// The RabbitMQ management UI in a real browser (Debian's chromium, driven by Playwright), used as an
/// operator uses it: by typing and clicking. Each step can be kept as a screenshot, attached to the test.
/// </summary>
public sealed class ManagementUi : IAsyncDisposable
{
    /// <summary>The machine has two busy cores: a page may take seconds to answer.</summary>
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    readonly IPlaywright playwright;
    readonly IBrowser browser;
    readonly IPage page;
    readonly Uri management;
    readonly string screenshots;
    int screenshotCount;

    ManagementUi(IPlaywright playwright, IBrowser browser, IPage page, Uri management)
    {
        this.playwright = playwright;
        this.browser = browser;
        this.page = page;
        this.management = management;
        screenshots = Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots", FileName(TestContext.CurrentContext.Test.Name));
        // An earlier run's steps would pass for this run's.
        if (Directory.Exists(screenshots))
            Directory.Delete(screenshots, recursive: true);
    }

    /// <summary>Opens a browser window on the management UI at <paramref name="management"/> (http://host:15672/).</summary>
    public static async Task<ManagementUi> StartAsync(Uri management)
    {
        // The driver (node and Playwright's JS) is copied from the package into the test's output; the browser is the system's.
        var playwright = await Playwright.CreateAsync();
        try
        {
            var chromium = Environment.GetEnvironmentVariable("XTELEMDB_TEST_CHROMIUM") ?? "/usr/bin/chromium";
            IBrowser browser;
            try
            {
                browser = await playwright.Chromium.LaunchAsync(new()
                {
                    ExecutablePath = chromium,
                    Headless = true,
                    // Tests run as root, where chromium's sandbox refuses to start.
                    Args = ["--no-sandbox"],
                    Timeout = (float)Patience.TotalMilliseconds,
                });
            }
            catch (PlaywrightException e)
            {
                throw new InvalidOperationException($"cannot run {chromium} ({e.Message}): install Debian's package chromium (scripts/services does)", e);
            }
            // No HttpCredentials: they make Playwright intercept every request, and the UI's synchronous requests then hang now and then.
            var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
            context.SetDefaultTimeout((float)Patience.TotalMilliseconds);
            context.SetDefaultNavigationTimeout((float)Patience.TotalMilliseconds);
            var page = await context.NewPageAsync();
            page.PageError += (_, error) => TestContext.Progress.WriteLine($"[management UI] page error: {error}");
            return new ManagementUi(playwright, browser, page, management);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>Fills in the login form; done when the UI shows its "Log out" button.</summary>
    public async Task LoginAsync(string user, string password)
    {
        // A wrong password is answered 401 with a Basic challenge, and the browser's own password dialog (which nobody
        // answers here) then holds the page's synchronous login request for ever: ask the form's question first.
        var whoami = await page.APIRequest.GetAsync(new Uri(management, "api/whoami").ToString(), new()
        {
            Headers = new Dictionary<string, string> { ["Authorization"] = "Basic " + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}")) },
        });
        if (whoami.Status == 401)
            throw new InvalidOperationException($"the management UI would refuse {user}'s login: {await whoami.TextAsync()}");

        await FailingWithScreenshot("login", async () =>
        {
            await page.GotoAsync(management.ToString());
            var form = page.Locator("#login form");
            await form.Locator("input[name='username']").FillAsync(user);
            await form.Locator("input[name='password']").FillAsync(password);
            await form.GetByRole(AriaRole.Button, new() { Name = "Login" }).ClickAsync();

            var loggedIn = page.GetByRole(AriaRole.Button, new() { Name = "Log out" });
            var refused = page.Locator("#login-status").GetByText(new System.Text.RegularExpressions.Regex("."));
            await loggedIn.Or(refused).First.WaitForAsync();
            if (!await loggedIn.IsVisibleAsync())
                throw new InvalidOperationException($"the management UI refused {user}'s login: {await page.Locator("#login-status").InnerTextAsync()}");
        });
    }

    /// <summary>The exchange's page, "Publish message": the payload typed in as is, no routing key, no properties.</summary>
    public async Task PublishAsync(string vhost, string exchange, string body) => await FailingWithScreenshot($"publish to {exchange}", async () =>
    {
        await OpenAsync($"#/exchanges/{E(vhost)}/{E(exchange)}", exchange);
        var publish = await ExpandAsync("Publish message");
        await publish.Locator("textarea[name='payload']").FillAsync(body);
        await publish.GetByRole(AriaRole.Button, new() { Name = "Publish message", Exact = true }).ClickAsync();

        // "Message published." or, in a warning, "Message published, but not routed." or the server's refusal.
        var notice = await NoticeAsync();
        if (notice != "Message published.")
            throw new InvalidOperationException($"publishing to exchange \"{exchange}\" in the management UI: {notice}");
    });

    /// <summary>
    /// The queue's page, "Get messages" with "Nack message requeue true" (the messages stay in the queue):
    /// up to <paramref name="count"/> messages as the page shows them; none when it says the queue is empty.
    /// </summary>
    public async Task<IReadOnlyList<ShownMessage>> GetMessagesAsync(string vhost, string queue, int count = 10) =>
        await FailingWithScreenshot($"get messages of {queue}", async () =>
        {
            await OpenAsync($"#/queues/{E(vhost)}/{E(queue)}", queue);
            var get = await ExpandAsync("Get messages");
            await get.Locator("select[name='ackmode']").SelectOptionAsync(new SelectOptionValue { Label = "Nack message requeue true" });
            await get.Locator("input[name='count']").FillAsync(count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await get.GetByRole(AriaRole.Button, new() { Name = "Get Message(s)" }).ClickAsync();

            var shown = page.Locator("#msg-wrapper div.box");
            await shown.First.Or(Notices).First.WaitForAsync();
            if (!await shown.First.IsVisibleAsync())
            {
                var notice = await NoticeAsync();
                return notice == "Queue is empty" ? [] : throw new InvalidOperationException($"getting messages of queue \"{queue}\" in the management UI: {notice}");
            }
            // The messages slide in (jQuery clips their box while it moves): for the screenshot, wait until they stand still.
            await Assertions.Expect(page.Locator("#msg-wrapper")).ToHaveCSSAsync("overflow", "visible", new() { Timeout = (float)Patience.TotalMilliseconds });
            var messages = new List<ShownMessage>();
            foreach (var box in await shown.AllAsync())
                messages.Add(await ReadAsync(box));
            return (IReadOnlyList<ShownMessage>)messages;
        });

    /// <summary>A full-page PNG of what the browser shows now, kept as the test's attachment: screenshots/&lt;test&gt;/NN-step.png.</summary>
    public async Task ScreenshotAsync(string step)
    {
        Directory.CreateDirectory(screenshots);
        var path = Path.Combine(screenshots, $"{++screenshotCount:00}-{FileName(step)}.png");
        // The UI's header is fixed to the window: scrolled down, a full-page picture would show it mid-page.
        // (A script has no timeout of its own: a page stuck in a synchronous request would hold it for ever.)
        await page.EvaluateAsync("() => window.scrollTo(0, 0)").WaitAsync(Patience);
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        TestContext.AddTestAttachment(path, step);
    }

    public async ValueTask DisposeAsync()
    {
        await browser.CloseAsync();
        playwright.Dispose();
    }

    static string E(string segment) => Uri.EscapeDataString(segment);

    static string FileName(string text) =>
        string.Concat(text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-'));

    /// <summary>The UI's notices: "Message published.", "Queue is empty", and its warnings.</summary>
    ILocator Notices => page.Locator(".form-popup-info, .form-popup-warn");

    async Task<string> NoticeAsync()
    {
        var notice = Notices.First;
        await notice.WaitForAsync();
        // The notice ends with its "Close" button.
        return (await notice.InnerTextAsync()).Replace("Close", "", StringComparison.Ordinal).Trim();
    }

    /// <summary>
    /// Opens a page of the single-page UI as a fresh document, so that nothing of the page before
    /// (a notice, messages got) is taken for an answer; done when its heading names <paramref name="name"/>.
    /// </summary>
    async Task OpenAsync(string fragment, string name)
    {
        // Another fragment of the loaded UI is no new document (Playwright answers null): load it afresh.
        if (await page.GotoAsync(new Uri(management, fragment).ToString()) is null)
            await page.ReloadAsync();
        var heading = page.Locator("#main h1");
        await heading.Filter(new() { HasTextString = name }).Or(heading.Filter(new() { HasTextString = "Not found" })).WaitForAsync();
        if ((await heading.InnerTextAsync()).Trim() == "Not found")
            throw new InvalidOperationException($"the management UI has no {fragment}: the page says \"Not found\"");
    }

    /// <summary>Opens a folded section of the page ("Publish message", "Get messages") unless it is open already (the UI remembers).</summary>
    async Task<ILocator> ExpandAsync(string title)
    {
        var section = page.Locator("#main div.section-visible, #main div.section-invisible")
            .Filter(new() { Has = page.Locator("h2", new() { HasTextString = title }) });
        await section.WaitForAsync();
        if (await section.GetAttributeAsync("class") is { } classes && classes.Contains("section-invisible", StringComparison.Ordinal))
            await section.Locator("h2").ClickAsync();
        var hider = section.Locator("div.hider");
        await hider.WaitForAsync();
        return hider;
    }

    /// <summary>One message's box: the "Properties" row (with its nested "headers" table) and the payload.</summary>
    async Task<ShownMessage> ReadAsync(ILocator box)
    {
        var payload = await box.Locator("pre.msg-payload").InnerTextAsync();
        var properties = box.Locator(":scope > table.facts > tbody > tr")
            .Filter(new() { Has = page.Locator(":scope > th", new() { HasTextRegex = new(@"^\s*Properties\s*$") }) })
            .Locator(":scope > td");
        var headerRows = properties.Locator(":scope > table > tbody > tr")
            .Filter(new() { Has = page.Locator(":scope > th", new() { HasTextString = "headers:" }) })
            .Locator(":scope > td > table > tbody > tr");
        var headers = new Dictionary<string, string>();
        foreach (var row in await headerRows.AllAsync())
            headers[(await row.Locator(":scope > th").InnerTextAsync()).Trim().TrimEnd(':')] = (await row.Locator(":scope > td").InnerTextAsync()).Trim();
        return new ShownMessage(payload, await properties.InnerTextAsync(), headers);
    }

    /// <summary>When the browser does not show what a step waits for, what it showed instead is kept too.</summary>
    async Task<T> FailingWithScreenshot<T>(string step, Func<Task<T>> run)
    {
        try
        {
            return await run();
        }
        catch (Exception e) when (e is PlaywrightException or TimeoutException)
        {
            try
            {
                await ScreenshotAsync($"failed {step}");
            }
            catch (Exception again) when (again is PlaywrightException or TimeoutException)
            {
                // The browser is gone: the first failure is the one to report.
            }
            throw;
        }
    }

    Task FailingWithScreenshot(string step, Func<Task> run) =>
        FailingWithScreenshot(step, async () => { await run(); return true; });
}
