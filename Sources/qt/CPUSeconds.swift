import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`: the e2e benchmark
/// divides what its measured run used by the intents it carried.
enum CPUSeconds {
    static func of(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let nameEnd = text.lastIndex(of: ")") else { return nil }
        // After the command name (which may hold spaces): state is field 3, utime 14, stime 15 (proc(5)).
        let fields = text[text.index(after: nameEnd)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static var ofThisProcess: Double? { of(pid: getpid()) }
}
