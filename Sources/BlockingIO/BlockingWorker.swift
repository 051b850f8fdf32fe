import Foundation

/// The worker thread has stopped: the job was not run.
public struct BlockingWorkerStopped: Error, CustomStringConvertible {
    public let worker: String
    public var description: String { "worker thread \(worker) stopped" }
}

/// A dedicated thread for blocking C calls: libnats (fetch, sync publish, KV, JetStream API)
/// and libcurl (HTTP).
///
/// Swift's cooperative pool has one thread per core (two here); one blocked call there stalls
/// half the process. Work submitted here runs on this thread, one job at a time, in order, and
/// the caller awaits the result without holding a cooperative thread.
public final class BlockingWorker: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    /// Jobs queued or running: a pool gives new work to its least busy worker.
    private var unfinished = 0
    private var isShutDown = false
    private var isFinished = false
    public let name: String

    public init(name: String) {
        self.name = name
        let thread = Thread { [self] in self.runLoop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the worker thread and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit { continuation.resume(with: Result { try body() }) }
            if !accepted { continuation.resume(throwing: BlockingWorkerStopped(worker: name)) }
        }
    }

    /// Runs `body` on the worker thread and waits for it on the calling (non-cooperative) thread.
    public func runAndWait<T>(_ body: @escaping () throws -> T) throws -> T {
        var result: Result<T, Error>?
        let done = NSCondition()
        let accepted = submit {
            let value = Result { try body() }
            done.lock(); result = value; done.signal(); done.unlock()
        }
        guard accepted else { throw BlockingWorkerStopped(worker: name) }
        done.lock()
        while result == nil { done.wait() }
        done.unlock()
        return try result!.get()
    }

    /// Queues a long-running job (a watch loop) and returns at once.
    public func runDetached(_ body: @escaping () -> Void) throws {
        guard submit(body) else { throw BlockingWorkerStopped(worker: name) }
    }

    @discardableResult
    private func submit(_ job: @escaping () -> Void) -> Bool {
        condition.lock(); defer { condition.unlock() }
        guard !isShutDown else { return false }
        jobs.append(job)
        unfinished += 1
        condition.signal()
        return true
    }

    /// Lets the queued jobs finish, then ends the thread; waits until it has ended.
    public func shutdown() {
        condition.lock()
        isShutDown = true
        condition.broadcast()
        while !isFinished { condition.wait() }
        condition.unlock()
    }

    private func runLoop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !isShutDown { condition.wait() }
            if jobs.isEmpty && isShutDown {
                isFinished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
            condition.lock()
            unfinished -= 1
            condition.unlock()
        }
    }

    /// Jobs queued or running now.
    var load: Int {
        condition.lock(); defer { condition.unlock() }
        return unfinished
    }
}

/// Workers for short blocking calls. Each call goes to the least busy worker (round-robin among
/// equals): a call that waits on the server (a KV write during a leader election waits up to its
/// timeout) must not hold up the calls queued behind it while other workers are idle.
public final class BlockingWorkerPool: @unchecked Sendable {
    private let workers: [BlockingWorker]
    private let lock = NSLock()
    private var next = 0

    public init(name: String, size: Int) {
        workers = (0..<max(1, size)).map { BlockingWorker(name: "\(name)-\($0)") }
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pick().run(body)
    }

    private func pick() -> BlockingWorker {
        lock.lock(); defer { lock.unlock() }
        next = (next + 1) % workers.count
        var chosen = workers[next]
        var lowest = chosen.load
        for offset in 1..<workers.count where lowest > 0 {
            let candidate = workers[(next + offset) % workers.count]
            let load = candidate.load
            if load < lowest { chosen = candidate; lowest = load }
        }
        return chosen
    }

    public func shutdown() {
        workers.forEach { $0.shutdown() }
    }
}
