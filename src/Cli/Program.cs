using Xtelemdb.Cli;
using Xtelemdb.Cli.Commands;

var root = XtelemdbCommand.Create();
var parsed = root.Parse(KeyValueArguments.Rewrite(root, args));
if (parsed.Errors.Count > 0)
{
    // An unknown command or option, a missing value, a value of the wrong type: say which, exit 2.
    foreach (var error in parsed.Errors)
        Output.Error(error.Message);
    Output.Error("see 'xtelemdb --help'");
    return XtelemdbCommand.BadUsage;
}
return await parsed.InvokeAsync();
