import BlockingIO
import CCurl
import Foundation

/// One HTTP request as the client sends it: the query string is final (signed when needed).
public struct TransportRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [String]
    /// Sent as is; nil or empty sends an empty body (a POST or PUT still says Content-Length: 0).
    public var body: Data?

    public init(method: String, url: String, headers: [String] = [], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct TransportResponse: Sendable {
    public let status: Int
    public let body: Data
    /// Header names lower-cased.
    public let headers: [String: String]
}

/// A transport failure: nothing, or not all, came back.
public struct TransportError: Error, CustomStringConvertible {
    public let code: Int32
    public let text: String
    public var isTimeout: Bool { code == Int32(CURLE_OPERATION_TIMEDOUT.rawValue) }
    public var description: String { "curl \(code): \(text)" }
}

/// libcurl's easy interface on dedicated threads: each thread keeps one easy handle for its
/// whole life, so connections are reused (keep-alive) and no blocking call ever runs on
/// Swift's cooperative pool. Requests go to the least busy thread.
public final class CurlTransport: @unchecked Sendable {
    private let lanes: [Lane]
    private let lock = NSLock()
    private let timeoutMs: Int
    private let connectTimeoutMs: Int

    public init(threads: Int, timeoutMs: Int, connectTimeoutMs: Int) {
        CurlGlobal.initialize()
        self.timeoutMs = timeoutMs
        self.connectTimeoutMs = connectTimeoutMs
        lanes = (0..<max(1, threads)).map { Lane(worker: BlockingWorker(name: "qt-http-\($0)")) }
    }

    public func perform(_ request: TransportRequest) async throws -> TransportResponse {
        let lane = lock.withLock {
            let lane = lanes.min { $0.inFlight < $1.inFlight }!
            lane.inFlight += 1
            return lane
        }
        defer { lock.withLock { lane.inFlight -= 1 } }
        let (timeoutMs, connectTimeoutMs) = (self.timeoutMs, self.connectTimeoutMs)
        return try await lane.worker.run { try lane.performBlocking(request, timeoutMs: timeoutMs, connectTimeoutMs: connectTimeoutMs) }
    }

    public func shutdown() {
        for lane in lanes {
            lane.worker.shutdown()
            lane.close()
        }
    }

    /// One thread and its easy handle.
    private final class Lane: @unchecked Sendable {
        let worker: BlockingWorker
        var inFlight = 0
        private var handle: UnsafeMutableRawPointer?

        init(worker: BlockingWorker) { self.worker = worker }

        func close() {
            if let handle { curl_easy_cleanup(handle) }
            handle = nil
        }

        func performBlocking(_ request: TransportRequest, timeoutMs: Int, connectTimeoutMs: Int) throws -> TransportResponse {
            if handle == nil { handle = curl_easy_init() }
            guard let curl = handle else { throw TransportError(code: -1, text: "curl_easy_init failed") }
            curl_easy_reset(curl)  // options of the previous request go; the connection cache stays
            let sink = ResponseSink()
            var headerList: UnsafeMutablePointer<curl_slist>?
            for header in request.headers { headerList = curl_slist_append(headerList, header) }
            defer { curl_slist_free_all(headerList) }

            let status: CURLcode = request.url.withCString { url in
                request.method.withCString { method in
                    _ = qt_curl_set_pointer(curl, CURLOPT_URL, url)
                    _ = qt_curl_set_pointer(curl, CURLOPT_CUSTOMREQUEST, method)
                    _ = qt_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
                    _ = qt_curl_set_long(curl, CURLOPT_TIMEOUT_MS, timeoutMs)
                    _ = qt_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMs)
                    _ = qt_curl_set_long(curl, CURLOPT_TCP_NODELAY, 1)
                    if let body = request.body, !body.isEmpty {
                        CurlGlobal.send(body, curl)
                    } else if request.method == "POST" || request.method == "PUT" {
                        CurlGlobal.sendEmptyBody(curl)
                    }
                    _ = qt_curl_set_pointer(curl, CURLOPT_HTTPHEADER, headerList)
                    let box = Unmanaged.passUnretained(sink).toOpaque()
                    _ = qt_curl_set_callback(curl, CURLOPT_WRITEFUNCTION, curlWriteBody)
                    _ = qt_curl_set_pointer(curl, CURLOPT_WRITEDATA, box)
                    _ = qt_curl_set_callback(curl, CURLOPT_HEADERFUNCTION, curlWriteHeader)
                    _ = qt_curl_set_pointer(curl, CURLOPT_HEADERDATA, box)
                    return curl_easy_perform(curl)
                }
            }
            guard status == CURLE_OK else {
                throw TransportError(code: Int32(status.rawValue), text: String(cString: curl_easy_strerror(status)))
            }
            var code = 0
            _ = qt_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &code)
            return TransportResponse(status: code, body: sink.body, headers: sink.headers)
        }
    }
}

public enum CurlGlobal {
    private static let once: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()
    public static func initialize() { _ = once }

    /// Every parameter travels in the query string; the body is empty. libcurl keeps only a
    /// pointer to CURLOPT_POSTFIELDS, so a Swift string there dangles once the call returns
    /// (seen: a stray byte in the body broke the signature): the copying option, size first.
    public static func sendEmptyBody(_ curl: UnsafeMutableRawPointer) {
        _ = qt_curl_set_long(curl, CURLOPT_POSTFIELDSIZE, 0)
        _ = qt_curl_set_pointer(curl, CURLOPT_COPYPOSTFIELDS, "")
    }

    /// A body (a webhook's JSON), copied by libcurl for the same reason.
    static func send(_ body: Data, _ curl: UnsafeMutableRawPointer) {
        _ = qt_curl_set_long(curl, CURLOPT_POSTFIELDSIZE, body.count)
        body.withUnsafeBytes { bytes in _ = qt_curl_set_pointer(curl, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress) }
    }
}

private final class ResponseSink {
    var body = Data()
    var headers: [String: String] = [:]
}

private let curlWriteBody: qt_curl_data_callback = { data, size, count, userdata in
    guard let data, let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    sink.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: size * count)
    return size * count
}

private let curlWriteHeader: qt_curl_data_callback = { data, size, count, userdata in
    guard let data, let userdata else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
    if line.hasPrefix("HTTP/") { sink.headers = [:] }  // a new response (after a 100 or a redirect)
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        sink.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return size * count
}
