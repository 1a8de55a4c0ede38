using Wolverine;

namespace ManaSync.Web.Infrastructure;

public static class WolverineSetup
{
    public static void ConfigureManaSync(this WolverineOptions options)
    {
        // Wolverine 6 compiles generated handler code only when asked to.
        options.UseRuntimeCompilation();
    }
}
