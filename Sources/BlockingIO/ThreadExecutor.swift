import Foundation

/// A task executor on one dedicated thread. Async work that must not compete with the rest of the
/// process for Swift's cooperative pool (one thread per core, two here) prefers it: the in-process
/// exchange simulator, whose market steps and order handling would otherwise delay the host's
/// handlers as no remote exchange ever does.
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let worker: BlockingWorker

    public init(name: String) {
        worker = BlockingWorker(name: name)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        // The thread is never shut down: a job refused here would be a task that never resumes.
        try! worker.runDetached { job.runSynchronously(on: executor) }
    }
}
