import Foundation

/// CLOCK_MONOTONIC in milliseconds: advances while the process is stopped (SIGSTOP) and never
/// jumps with the wall clock, so a lease deadline measured with it holds after a pause.
enum MonotonicClock {
    static func nowMs() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
