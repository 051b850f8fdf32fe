import Foundation

/// `/healthz`, `/readyz` and `/metrics` over plain HTTP/1.0 on its own thread. Three GET
/// endpoints polled by Prometheus and an orchestrator need no web framework.
final class StatusServer: @unchecked Sendable {
    typealias Responder = @Sendable (_ path: String) -> (status: Int, contentType: String, body: String)
    let port: Int
    private let socketFD: Int32
    private let responder: Responder
    private let lock = NSLock()
    private var stopped = false

    init(port: Int, responder: @escaping Responder) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HostError.startup("status server: socket() failed: errno \(errno)") }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: INADDR_ANY)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw HostError.startup("status server: cannot listen on port \(port) (errno \(errno)); set http_port to a free port")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        self.socketFD = fd
        self.responder = responder
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "qt-status-http"
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(socketFD, Int32(SHUT_RDWR))
        close(socketFD)
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            let client = accept(socketFD, nil, nil)
            if client < 0 { if isStopped { return } else { continue } }
            serve(client)
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(client, &buffer, buffer.count)
        guard count > 0 else { return }
        let request = String(decoding: buffer[0..<count], as: UTF8.self)
        let parts = request.split(separator: " ", maxSplits: 2)
        let path = parts.count >= 2 && parts[0] == "GET" ? String(parts[1]) : ""
        let answer: (status: Int, contentType: String, body: String) = path.isEmpty ? (405, "text/plain", "only GET\n") : responder(path)
        let reason = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][answer.status] ?? "Status"
        let body = Array(answer.body.utf8)
        let head = "HTTP/1.0 \(answer.status) \(reason)\r\nContent-Type: \(answer.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            sent += written
        }
    }
}

public enum HostError: Error, CustomStringConvertible {
    case startup(String)
    public var description: String {
        switch self {
        case .startup(let text): return text
        }
    }
}
