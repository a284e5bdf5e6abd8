using System.Globalization;
using DpoSharp.Cli;

// Numbers in output files and messages never depend on the user's locale.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.DefaultThreadCurrentUICulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentUICulture = CultureInfo.InvariantCulture;
// Large tensors go back to the system when freed: glibc's heap would otherwise keep gigabytes of freed activations.
DpoSharp.Native.NativeAllocator.ReleaseLargeBlocks();
return DpoSharpCli.Run(args);
