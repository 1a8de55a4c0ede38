using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace ManaSync.Web.Infrastructure;

/// <summary>
/// Runs long background work (a rebuild of the record view) on threads of its own at the lowest CPU priority, so that
/// requests sharing the machine's cores are never queued behind it: on Linux a thread's nice value is its own, and a
/// runnable request thread preempts these at once. The work's own continuations stay here (awaits resume on the current
/// scheduler); the I/O it waits for completes on the thread pool as usual. Elsewhere the threads run at normal priority.
/// </summary>
public sealed class BackgroundScheduler : TaskScheduler, IDisposable
{
    /// <summary>Linux's lowest priority (nice 19): the work gets a core only while no normal thread wants it.</summary>
    private const int Nice = 19;

    private readonly BlockingCollection<Task> _queue = new();
    private readonly Thread[] _threads;

    /// <param name="threads">How many of the work's steps may run at once (a rebuild reads the next page while it merges one).</param>
    public BackgroundScheduler(string name, int threads)
    {
        _threads = Enumerable.Range(0, threads).Select(i => new Thread(Run) { IsBackground = true, Name = $"{name} {i + 1}" }).ToArray();
        foreach (var thread in _threads) thread.Start();
    }

    /// <summary>Runs an asynchronous operation here, to its end; the caller carries on on the thread pool, at its own priority.</summary>
    public async Task<T> RunAsync<T>(Func<Task<T>> work) =>
        await Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this).Unwrap()
            .ConfigureAwait(ConfigureAwaitOptions.ForceYielding);

    private void Run()
    {
        if (OperatingSystem.IsLinux()) _ = SetPriority(ProcessPriority, ThreadId(), Nice);
        foreach (var task in _queue.GetConsumingEnumerable()) TryExecuteTask(task);
    }

    protected override void QueueTask(Task task)
    {
        try
        {
            _queue.Add(task);
        }
        catch (InvalidOperationException)
        {
            // Work left running when the scheduler ended (a read a failed rebuild abandoned) still finishes, on the pool.
            ThreadPool.QueueUserWorkItem(_ => TryExecuteTask(task));
        }
    }

    /// <summary>Inline only on its own threads: a continuation must not run at the priority of the thread that completed it.</summary>
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) =>
        _threads.Contains(Thread.CurrentThread) && !taskWasPreviouslyQueued && TryExecuteTask(task);

    protected override IEnumerable<Task> GetScheduledTasks() => _queue.ToArray();

    /// <summary>Lets the threads end once the work queued has run.</summary>
    public void Dispose() => _queue.CompleteAdding();

    /// <summary><c>PRIO_PROCESS</c>: with a thread id, Linux sets that thread's priority alone.</summary>
    private const int ProcessPriority = 0;

    [DllImport("libc", EntryPoint = "setpriority")]
    private static extern int SetPriority(int which, int who, int priority);

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int ThreadId();
}
