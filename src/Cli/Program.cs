using Xtelemdb.Cli;

var root = Commands.Create();
return await root.Parse(KeyValueArguments.Rewrite(root, args)).InvokeAsync();
