import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The executor's steps at which a crash test may kill the process (`QT_CRASH_AT=<point>`, read
/// once at start). Unset in production; the crash tests run a host as a child process with it
/// set and check that the restarted host finishes every plan exactly once.
public enum CrashPoint: String, CaseIterable, Sendable {
    case afterClaim = "after-claim"
    case afterRecord = "after-record"
    case afterSend = "after-send"
    case afterFill = "after-fill"
    case afterLedger = "after-ledger"
    case beforeAck = "before-ack"

    public static let environmentVariable = "QT_CRASH_AT"
    static let armed: CrashPoint? = ProcessInfo.processInfo.environment[environmentVariable].flatMap(CrashPoint.init(rawValue:))

    /// SIGKILL, so nothing is flushed or acknowledged: what a power cut leaves behind.
    static func reached(_ point: CrashPoint) {
        guard armed == point else { return }
        FileHandle.standardError.write(Data("executor: \(environmentVariable)=\(point.rawValue): killing the process\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
