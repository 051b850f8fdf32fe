import Foundation

/// A secret on disk: created with mode 0600 from the first byte (never written wider and
/// narrowed afterwards), complete or absent (written to a temporary name, synced, renamed).
public enum SecretFile {
    public static let mode: mode_t = 0o600

    public static func write(_ contents: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw SecretFileError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == contents.utf8.count, synced == 0 else {
            unlink(temporary)
            throw SecretFileError("cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw SecretFileError("cannot move \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The permission bits of `path`, or nil when it does not exist.
    public static func permissions(of path: String) -> mode_t? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return status.st_mode & 0o777
    }
}

public struct SecretFileError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
