import CNats
import Dispatch
import Foundation

extension BusConnection {
    /// A standing pull on an existing durable (see `ensureConsumer`); its messages are fetched
    /// without a thread waiting in libnats, and every request that brings any counts once in `served`.
    func standingPull(stream: String, durable: String, served: (@Sendable () -> Void)?) throws -> StandingPull {
        let pull = try StandingPull(connection: connection, acks: liveness, inboxPrefix: options.inboxPrefix ?? "_INBOX",
                                    stream: stream, durable: durable, served: served)
        onClose { pull.close() }
        return pull
    }
}

/// A durable's messages through pull requests that stay open (issue 20).
///
/// libnats 3.4.1 has no asynchronous pull: `natsSubscription_Fetch` blocks a thread, asks with
/// `no_wait`, and so ends its request as soon as what is stored has been delivered: one request,
/// and one round trip, per message when messages come one at a time. Here each request asks for a
/// batch and stays open until it has brought the batch or expires (`expires` is the fetch timeout,
/// so a request never outlives the lease its gate checked), and the messages arrive on a plain
/// subscription as the server stores them; a fetch takes what has arrived. One request at a time
/// is open: the server never holds more of the durable's messages for this host than one batch.
///
/// The protocol, as the server speaks it: requests go to `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`
/// with a reply subject of this pull's own inbox and the request's number; messages come back with
/// their stream subject and an ack subject, and the end of a request as a status without payload
/// on the reply subject (100 idle heartbeat, 404 nothing stored for a `no_wait`, 408 expired, 409
/// and others: refused). A request whose end never comes (a server restart) is over at its expiry
/// plus `endGraceMs`.
final class StandingPull: @unchecked Sendable {
    let stream: String
    let durable: String
    private let connection: OpaquePointer
    /// What the messages' acks go out on.
    private let acks: ConnectionLiveness
    private let requestSubject: String
    private let inbox: String
    private let served: (@Sendable () -> Void)?
    private var subscription: OpaquePointer?
    /// A request's end is known locally this long after its expiry when the server's status is lost.
    static let endGraceMs: Int64 = 250

    private struct OpenRequest {
        let number: Int
        var remaining: Int
        var broughtAny = false
        /// `no_wait`: delivered in one go, handed over only when the request ended (a takeover's
        /// redeliveries, sorted together into stream order).
        let wholeBatch: Bool
    }

    private let lock = NSLock()
    private var requests = 0
    private var open: OpenRequest?
    private var arrived: [InboundMessage] = []
    private var waiter: CheckedContinuation<Void, Never>?
    private var endWaiters: [CheckedContinuation<Void, Never>] = []
    private var handingOut = true
    /// While stopped: what arrives is kept, to be NAKed once the open request has ended (a NAK
    /// sent while it is open would bring the message straight back to it) or dropped.
    private var kept: [InboundMessage] = []
    /// What arrives while stopped after the kept messages were taken: NAKed with this delay,
    /// or (nil) dropped and left for AckWait.
    private var strays: (@Sendable (InboundMessage) -> Int64)?
    /// Stopped, and the kept messages not yet taken.
    private var keeping = false
    private var refusal: BusError?
    private var closed = false

    init(connection: OpaquePointer, acks: ConnectionLiveness, inboxPrefix: String, stream: String, durable: String,
         served: (@Sendable () -> Void)?) throws {
        self.connection = connection
        self.acks = acks
        self.stream = stream
        self.durable = durable
        self.served = served
        self.requestSubject = "$JS.API.CONSUMER.MSG.NEXT.\(stream).\(durable)"
        var unique: UnsafeMutablePointer<CChar>?
        try NatsCall.check(natsInbox_Create(&unique), "inbox for \(stream)/\(durable)")
        let token = String(cString: unique!).split(separator: ".").last.map(String.init) ?? ""
        natsInbox_Destroy(unique)
        self.inbox = "\(inboxPrefix).\(token)"
        var sub: OpaquePointer?
        // The subscription holds the pull until its completion callback: a message callback may
        // still be running when `close()` returns.
        let closure = Unmanaged.passRetained(self).toOpaque()
        let status = natsConnection_Subscribe(&sub, connection, "\(inbox).*", standingPullArrived, closure)
        guard status == NATS_OK, let sub else {
            Unmanaged<StandingPull>.fromOpaque(closure).release()
            throw NatsCall.error(status, "subscribe \(inbox).* for \(stream)/\(durable)")
        }
        natsSubscription_SetOnCompleteCB(sub, standingPullCompleted, closure)
        subscription = sub
    }

    var isClosed: Bool { lock.withLock { closed } }

    /// What has arrived, up to the request's batch; waits for the first message when nothing has,
    /// sending a request (`gate` asked just before) when none is open. Empty when a request ended
    /// without bringing anything, or the pull was stopped. `batch` larger than the standing batch
    /// (`wholeBatch`) asks with `no_wait` and hands the request's messages over together.
    func fetch(batch: Int, timeoutMs: Int64, wholeBatch: Bool = false, gate: (@Sendable () -> Bool)? = nil) async throws -> [InboundMessage] {
        var asked = false
        while true {
            let next: Step = try lock.withLock {
                if closed { throw BusError.closed("consumer \(durable)") }
                if let refused = refusal { refusal = nil; throw refused }
                if !handingOut { return .take([]) }
                if let request = open {
                    if !arrived.isEmpty && !request.wholeBatch { return .take(takeArrived()) }
                    return .wait
                }
                if !arrived.isEmpty || asked { return .take(takeArrived()) }
                return .ask
            }
            switch next {
            case .take(let messages):
                return messages
            case .wait:
                await arrivalOrEnd()
            case .ask:
                if let gate, !gate() { throw FetchHeldBack() }
                try send(batch: batch, expiresMs: timeoutMs, noWait: wholeBatch)
                asked = true
            }
        }
    }

    private enum Step {
        case take([InboundMessage])
        case wait
        case ask
    }

    /// Under the lock.
    private func takeArrived() -> [InboundMessage] {
        defer { arrived = [] }
        return arrived
    }

    private func send(batch: Int, expiresMs: Int64, noWait: Bool) throws {
        let expiresNs = expiresMs * 1_000_000
        let body = "{\"batch\":\(batch),\"expires\":\(expiresNs)" + (noWait ? ",\"no_wait\":true}" : "}")
        // Published under the lock that `close` takes: the connection's owner runs `close` before
        // it destroys the connection, so a request never goes out on a destroyed one (a fetch that
        // checked `closed` just before a close crashed the process in glibc's mutex code).
        let (number, status) = try lock.withLock { () throws -> (Int, natsStatus) in
            if closed { throw BusError.closed("consumer \(durable)") }
            requests += 1
            open = OpenRequest(number: requests, remaining: batch, wholeBatch: noWait)
            return (requests, natsConnection_PublishRequestString(connection, requestSubject, "\(inbox).\(requests)", body))
        }
        guard status == NATS_OK else {
            end(number, refusal: nil)
            throw NatsCall.error(status, "pull request \(stream)/\(durable)")
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(expiresMs + Self.endGraceMs))) { [weak self] in
            self?.end(number, refusal: nil)
        }
    }

    /// Returns when a message arrives, the open request ends, or the pull is stopped or closed.
    private func arrivalOrEnd() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock { () -> Bool in
                if closed || !handingOut || open == nil || (!arrived.isEmpty && !(open?.wholeBatch ?? false)) { return true }
                waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Under the lock: the waiting fetch, to be resumed outside it.
    private func takeWaiter() -> CheckedContinuation<Void, Never>? {
        defer { waiter = nil }
        return waiter
    }

    /// Request `number` is over (its status came, or its time ran out).
    private func end(_ number: Int, refusal: BusError?) {
        let (fetcher, enders): (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = lock.withLock {
            guard open?.number == number else { return (nil, []) }
            open = nil
            if let refusal { self.refusal = refusal }
            defer { endWaiters = [] }
            return (takeWaiter(), endWaiters)
        }
        fetcher?.resume()
        enders.forEach { $0.resume() }
    }

    /// On libnats' delivery thread of this subscription.
    fileprivate func arrived(_ msg: OpaquePointer) {
        if natsMsg_GetDataLength(msg) == 0, let status = Self.status(of: msg) {
            let number = natsMsg_GetSubject(msg).map { String(cString: $0) }?.split(separator: ".").last.flatMap { Int($0) }
            let description = Self.header("Description", of: msg) ?? ""
            natsMsg_Destroy(msg)
            guard status != "100", let number else { return }
            let refused = status == "404" || status == "408" ? nil
                : BusError.nats(operation: "pull request \(stream)/\(durable)", status: status, text: description, jetStreamCode: 0)
            end(number, refusal: refused)
            return
        }
        let message = InboundMessage(taking: msg, ackingOn: acks, stream: stream, consumer: durable)
        var firstOfRequest = false
        var nakDelay: (@Sendable (InboundMessage) -> Int64)?
        let (fetcher, enders): (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = lock.withLock {
            var ended = false
            if var request = open {
                firstOfRequest = !request.broughtAny
                request.broughtAny = true
                request.remaining -= 1
                ended = request.remaining <= 0
                open = ended ? nil : request
            }
            if closed {
                // Left unacked: the connection is going.
            } else if handingOut {
                arrived.append(message)
            } else if keeping {
                kept.append(message)
            } else {
                nakDelay = strays
            }
            let enders = ended ? endWaiters : []
            if ended { endWaiters = [] }
            let wake = ended || !(open?.wholeBatch ?? false)
            return (wake ? takeWaiter() : nil, enders)
        }
        if firstOfRequest { served?() }
        if let nakDelay { try? message.nak(delayMs: nakDelay(message)) }
        fetcher?.resume()
        enders.forEach { $0.resume() }
    }

    private static func status(of msg: OpaquePointer) -> String? { header("Status", of: msg) }

    private static func header(_ name: String, of msg: OpaquePointer) -> String? {
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(msg, name, &value) == NATS_OK, let value else { return nil }
        return String(cString: value)
    }

    /// The consumer stopped: nothing more is handed out; what has arrived, and what arrives while
    /// the open request lasts, is kept.
    func holdArrivals() {
        let fetcher = lock.withLock {
            handingOut = false
            keeping = true
            strays = nil
            kept.append(contentsOf: arrived)
            arrived = []
            return takeWaiter()
        }
        fetcher?.resume()
    }

    /// After `holdArrivals`: once the open request has ended, everything kept, in stream order,
    /// for the caller to NAK; anything arriving after that is NAKed with `delayMs`.
    func takeKeptOnceEnded(nakingStraysWith delayMs: @escaping @Sendable (InboundMessage) -> Int64) async -> [InboundMessage] {
        await requestEnded()
        return lock.withLock {
            keeping = false
            strays = delayMs
            defer { kept = [] }
            return kept.sorted { $0.streamSequence < $1.streamSequence }
        }
    }

    /// Messages a fetch took just as the consumer stopped: they go where an arrival would.
    func giveBack(_ messages: [InboundMessage]) {
        let nakDelay: (@Sendable (InboundMessage) -> Int64)? = lock.withLock {
            if keeping { kept.append(contentsOf: messages); return nil }
            if handingOut { arrived = messages + arrived; return nil }
            return strays
        }
        if let nakDelay { for message in messages { try? message.nak(delayMs: nakDelay(message)) } }
    }

    /// After `holdArrivals`: everything kept, and whatever arrives until the consumer runs again,
    /// is left unacked for AckWait (a partition another host owns now).
    func dropKept() {
        lock.withLock {
            keeping = false
            strays = nil
            kept = []
        }
    }

    /// The consumer runs again: kept messages are handed out first.
    func resumeArrivals() {
        lock.withLock {
            handingOut = true
            keeping = false
            strays = nil
            arrived = kept + arrived
            kept = []
        }
    }

    /// Returns once no request is open: nothing more of the durable's can arrive here.
    func requestEnded() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lock.withLock { () -> Bool in
                if open == nil || closed { return true }
                endWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Unsubscribes (the durable stays); what was held is left unacked.
    func close() {
        let (sub, fetcher, enders): (OpaquePointer?, CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = lock.withLock {
            if closed { return (nil, nil, []) }
            closed = true
            open = nil
            arrived = []
            kept = []
            defer { endWaiters = []; subscription = nil }
            return (subscription, takeWaiter(), endWaiters)
        }
        fetcher?.resume()
        enders.forEach { $0.resume() }
        if let sub {
            natsSubscription_Unsubscribe(sub)
            natsSubscription_Destroy(sub)
        }
    }
}

/// The consumer's fetch gate said no: no pull request was sent.
struct FetchHeldBack: Error {}

private func standingPullArrived(_ connection: OpaquePointer?, _ subscription: OpaquePointer?, _ msg: OpaquePointer?,
                                 _ closure: UnsafeMutableRawPointer?) {
    guard let msg, let closure else { return }
    Unmanaged<StandingPull>.fromOpaque(closure).takeUnretainedValue().arrived(msg)
}

private func standingPullCompleted(_ closure: UnsafeMutableRawPointer?) {
    guard let closure else { return }
    Unmanaged<StandingPull>.fromOpaque(closure).release()
}
