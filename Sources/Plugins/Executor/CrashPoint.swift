/// The executor's steps at which a crash test may kill the process. Production never installs a
/// hook; the crash tests run `qt-test-host --catalog`, which installs one that SIGKILLs the
/// process at the step named by `QT_CRASH_AT`, and check that the restarted host finishes every
/// plan exactly once.
public enum CrashPoint: String, CaseIterable, Sendable {
    /// An OPEN's record created beside its claim, the claim's answer not yet in.
    case afterCreate = "after-create"
    case afterClaim = "after-claim"
    case afterRecord = "after-record"
    case afterSend = "after-send"
    case afterFill = "after-fill"
    case afterLedger = "after-ledger"
    case beforeAck = "before-ack"
}

/// Called as the executor passes each `CrashPoint`.
public typealias CrashHook = @Sendable (CrashPoint) -> Void
