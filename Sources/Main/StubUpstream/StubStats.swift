import Actors

/// What the stub upstream was asked: per route, per fault, and per chat.
///
/// Per-chat counts live in one `[UInt32]` indexed by chat number (4 bytes a chat: 4 MB for a
/// million chats), so a test can assert "exactly one upstream request for chat X" at any scale.
/// A request counts when it passed the token check, before any fault is applied: a request
/// answered with an injected 503 still counts, as upstream did receive it. A chat named twice
/// in one batch request counts once.
public struct StubStats: Sendable {
    /// The contract's routes, as counted.
    public enum Route: String, Sendable, Hashable, CaseIterable {
        case participants = "get_participants"
        case batchGet = "batch_get"
        case listChats = "list_chats"
    }

    /// Faults, as counted when injected.
    public enum Fault: String, Sendable, Hashable, CaseIterable {
        case hang, latency, failNext = "fail_next", rateLimited = "rate_429", error, malformed, partial
    }

    private var perChat: [UInt32]
    public private(set) var requests: [Route: Int] = [:]
    public private(set) var faults: [Fault: Int] = [:]
    /// Requests refused for a missing or wrong bearer token.
    public private(set) var unauthorized = 0
    /// Chat ids asked for (single-chat and batch requests), in total.
    public private(set) var idsRequested = 0
    /// Of those, ids that are not in the dataset.
    public private(set) var unknownIDsRequested = 0

    init(chatCount: Int) {
        perChat = [UInt32](repeating: 0, count: chatCount)
    }

    /// Requests that named chat number `number` (1-based).
    public func requests(forChat number: Int) -> Int {
        perChat.indices.contains(number - 1) ? Int(perChat[number - 1]) : 0
    }

    /// Requests to `route`.
    public func requests(_ route: Route) -> Int { requests[route] ?? 0 }

    /// Injections of `fault`.
    public func injected(_ fault: Fault) -> Int { faults[fault] ?? 0 }

    /// Requests to the contract's routes, all together.
    public var totalRequests: Int { requests.values.reduce(0, +) }

    /// Chats named by at least one request, and the most requests any one chat got.
    public func chatCoverage() -> (chatsRequested: Int, maxPerChat: Int) {
        var requested = 0
        var maximum: UInt32 = 0
        for count in perChat where count > 0 {
            requested += 1
            maximum = max(maximum, count)
        }
        return (requested, Int(maximum))
    }

    mutating func count(_ route: Route) {
        requests[route, default: 0] += 1
    }

    mutating func count(_ fault: Fault) {
        faults[fault, default: 0] += 1
    }

    mutating func countUnauthorized() {
        unauthorized += 1
    }

    /// Counts one request for a chat id; `number` is nil for ids outside the dataset.
    mutating func countID(number: Int?) {
        idsRequested += 1
        if let number, perChat.indices.contains(number - 1) {
            perChat[number - 1] &+= 1
        } else {
            unknownIDsRequested += 1
        }
    }

    mutating func reset() {
        for index in perChat.indices { perChat[index] = 0 }
        requests = [:]
        faults = [:]
        unauthorized = 0
        idsRequested = 0
        unknownIDsRequested = 0
    }

    /// The stats as `GET /admin/stats` shows them.
    func jsonBytes(faults current: StubFaults, hanging: Int) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 768)
        writer.appendRaw(#"{"requests":{"#)
        for (index, route) in Route.allCases.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendString(route.rawValue)
            writer.appendRaw(ascii: UInt8(ascii: ":"))
            writer.appendInteger(Int64(requests(route)))
        }
        writer.appendRaw(#"},"total_requests":"#)
        writer.appendInteger(Int64(totalRequests))
        writer.appendRaw(#","unauthorized":"#)
        writer.appendInteger(Int64(unauthorized))
        writer.appendRaw(#","ids_requested":"#)
        writer.appendInteger(Int64(idsRequested))
        writer.appendRaw(#","unknown_ids_requested":"#)
        writer.appendInteger(Int64(unknownIDsRequested))
        let coverage = chatCoverage()
        writer.appendRaw(#","chats_requested":"#)
        writer.appendInteger(Int64(coverage.chatsRequested))
        writer.appendRaw(#","max_requests_per_chat":"#)
        writer.appendInteger(Int64(coverage.maxPerChat))
        writer.appendRaw(#","faults_injected":{"#)
        for (index, fault) in Fault.allCases.enumerated() {
            if index > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendString(fault.rawValue)
            writer.appendRaw(ascii: UInt8(ascii: ":"))
            writer.appendInteger(Int64(injected(fault)))
        }
        writer.appendRaw(#"},"hanging":"#)
        writer.appendInteger(Int64(hanging))
        writer.appendRaw(#","faults":"#)
        let faultBytes = current.jsonBytes()
        for byte in faultBytes { writer.appendRaw(ascii: byte) }
        writer.appendRaw(ascii: UInt8(ascii: "}"))
        return writer.bytes
    }
}
