using System.CommandLine;
using Xtelemdb.Cli;

return await Commands.Create().Parse(KeyValueArguments.Rewrite(args)).InvokeAsync();
