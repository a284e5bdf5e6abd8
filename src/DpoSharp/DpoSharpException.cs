namespace DpoSharp;

/// <summary>
/// An error caused by the user's input (a file, a row, a field, an option) rather than a bug. The message
/// names where the problem is and what to do; the command line prints it and exits with code 2.
/// </summary>
public class DpoSharpException : Exception
{
    /// <summary>Creates the exception with a message that names the file/row/field and the fix.</summary>
    public DpoSharpException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception wrapping the low-level cause.</summary>
    public DpoSharpException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
