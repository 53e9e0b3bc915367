import Actors
import Foundation

/// The faults the stub upstream injects into the contract's routes (never into `/admin/*`).
///
/// Applied to each request in this order, after the bearer-token check:
/// 1. ``hang``: the request waits, unanswered, until the fault is cleared, the stub shuts down
///    or `maxHang` passes; then it goes on below.
/// 2. ``latency`` ± ``latencyJitter``.
/// 3. ``failNext``: the next N requests answer ``failStatus`` (429s carry `Retry-After`).
/// 4. ``rate429``: 429 with `Retry-After: ` ``retryAfterSeconds``.
/// 5. ``errorRate``: 503.
/// 6. ``malformedRate``: a 200 whose body breaks the contract, of ``malformedKind``.
/// 7. ``partialRate`` (batchGet only): some requested ids are left out of both lists.
///
/// Rates are probabilities in 0...1, drawn from a generator seeded with ``seed``, so one
/// sequence of requests meets the same faults every run. Setting the faults reseeds it.
///
/// JSON (the admin route): snake_case keys, durations as text (`"250ms"`), e.g.
/// `{"latency":"50ms","error_rate":0.1,"malformed_kind":"truncated","hang":false}`.
public struct StubFaults: Sendable, Hashable {
    /// What a malformed body looks like.
    public enum MalformedKind: String, Sendable, Hashable, CaseIterable {
        /// Not JSON at all: an HTML error page with status 200.
        case notJSON = "not_json"
        /// Valid JSON with the wrong types (`version` a string, `chats` an object...).
        case wrongTypes = "wrong_types"
        /// The correct body cut in half.
        case truncated
        /// Each malformed answer picks one of the three above, in turn.
        case mixed
    }

    public var latency: Duration = .zero
    public var latencyJitter: Duration = .zero
    public var errorRate: Double = 0
    public var rate429: Double = 0
    public var retryAfterSeconds: Int = 1
    public var malformedRate: Double = 0
    public var malformedKind: MalformedKind = .mixed
    public var hang = false
    public var partialRate: Double = 0
    public var failNext = 0
    public var failStatus = 503
    public var seed: UInt64 = 1

    /// No faults.
    public init() {}

    /// Whether any fault is set.
    public var isEmpty: Bool {
        var cleared = StubFaults()
        cleared.seed = seed
        return self == cleared
    }
}

/// A fault setting the stub refused.
public struct StubFaultsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension StubFaults {
    static let keys: Set<String> = [
        "latency", "latency_jitter", "error_rate", "rate_429", "retry_after_seconds", "malformed_rate",
        "malformed_kind", "hang", "partial_rate", "fail_next", "fail_status", "seed",
    ]

    /// These faults with the keys of a JSON object changed; keys left out keep their values.
    /// Unknown keys, wrong types and out-of-range values are refused, naming the key.
    public func applying(patch body: [UInt8]) throws(StubFaultsError) -> StubFaults {
        let keys: [String: AnyJSONValue]
        let patch: Patch
        do {
            keys = try JSONDecoder().decode([String: AnyJSONValue].self, from: Data(body))
        } catch {
            throw StubFaultsError(message: "the body must be a JSON object")
        }
        if let unknown = keys.keys.sorted().first(where: { !Self.keys.contains($0) }) {
            throw StubFaultsError(message: "unknown fault \"\(unknown)\"; known: \(Self.keys.sorted().joined(separator: ", "))")
        }
        do {
            patch = try JSONDecoder().decode(Patch.self, from: Data(body))
        } catch let error as Patch.WrongType {
            throw StubFaultsError(message: "\(error.key) has the wrong type")
        } catch {
            throw StubFaultsError(message: "the body must be a JSON object")
        }
        return try patch.applied(to: self)
    }

    /// The keys of the admin route's JSON, each optional: a partial update.
    private struct Patch: Decodable {
        var latency: String?
        var latencyJitter: String?
        var errorRate: Double?
        var rate429: Double?
        var retryAfterSeconds: Int?
        var malformedRate: Double?
        var malformedKind: String?
        var hang: Bool?
        var partialRate: Double?
        var failNext: Int?
        var failStatus: Int?
        var seed: UInt64?

        enum CodingKeys: String, CodingKey {
            case latency
            case latencyJitter = "latency_jitter"
            case errorRate = "error_rate"
            case rate429 = "rate_429"
            case retryAfterSeconds = "retry_after_seconds"
            case malformedRate = "malformed_rate"
            case malformedKind = "malformed_kind"
            case hang
            case partialRate = "partial_rate"
            case failNext = "fail_next"
            case failStatus = "fail_status"
            case seed
        }

        /// A key whose value has the wrong JSON type.
        struct WrongType: Error {
            var key: String
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func field<T: Decodable>(_ key: CodingKeys) throws -> T? {
                do {
                    return try container.decodeIfPresent(T.self, forKey: key)
                } catch {
                    // Linux reports some number mismatches without a coding path: name the key here.
                    throw WrongType(key: key.stringValue)
                }
            }
            latency = try field(.latency)
            latencyJitter = try field(.latencyJitter)
            errorRate = try field(.errorRate)
            rate429 = try field(.rate429)
            retryAfterSeconds = try field(.retryAfterSeconds)
            malformedRate = try field(.malformedRate)
            malformedKind = try field(.malformedKind)
            hang = try field(.hang)
            partialRate = try field(.partialRate)
            failNext = try field(.failNext)
            failStatus = try field(.failStatus)
            seed = try field(.seed)
        }

        func applied(to faults: StubFaults) throws(StubFaultsError) -> StubFaults {
            var result = faults
            if let latency { result.latency = try duration(latency, "latency") }
            if let latencyJitter { result.latencyJitter = try duration(latencyJitter, "latency_jitter") }
            if let errorRate { result.errorRate = try rate(errorRate, "error_rate") }
            if let rate429 { result.rate429 = try rate(rate429, "rate_429") }
            if let retryAfterSeconds { result.retryAfterSeconds = try integer(retryAfterSeconds, "retry_after_seconds", in: 0...86_400) }
            if let malformedRate { result.malformedRate = try rate(malformedRate, "malformed_rate") }
            if let malformedKind {
                guard let kind = MalformedKind(rawValue: malformedKind) else {
                    throw StubFaultsError(message: "malformed_kind must be one of \(MalformedKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                result.malformedKind = kind
            }
            if let hang { result.hang = hang }
            if let partialRate { result.partialRate = try rate(partialRate, "partial_rate") }
            if let failNext { result.failNext = try integer(failNext, "fail_next", in: 0...1_000_000_000) }
            if let failStatus { result.failStatus = try integer(failStatus, "fail_status", in: 400...599) }
            if let seed { result.seed = seed }
            return result
        }

        private func rate(_ value: Double, _ key: String) throws(StubFaultsError) -> Double {
            guard (0...1).contains(value) else { throw StubFaultsError(message: "\(key) must be within 0...1") }
            return value
        }

        private func integer(_ value: Int, _ key: String, in range: ClosedRange<Int>) throws(StubFaultsError) -> Int {
            guard range.contains(value) else {
                throw StubFaultsError(message: "\(key) must be within \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }

        private func duration(_ text: String, _ key: String) throws(StubFaultsError) -> Duration {
            guard let duration = parseDuration(text) else {
                throw StubFaultsError(message: "\(key) must be a duration such as \"250ms\" or \"2s\"")
            }
            return duration
        }
    }

    /// The faults as the admin routes show them.
    public func jsonBytes() -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 320)
        writer.appendRaw(#"{"latency":"#)
        writer.appendString(formatDuration(latency))
        writer.appendRaw(#","latency_jitter":"#)
        writer.appendString(formatDuration(latencyJitter))
        writer.appendRaw(#","error_rate":"#)
        writer.appendRawNumber(errorRate)
        writer.appendRaw(#","rate_429":"#)
        writer.appendRawNumber(rate429)
        writer.appendRaw(#","retry_after_seconds":"#)
        writer.appendInteger(Int64(retryAfterSeconds))
        writer.appendRaw(#","malformed_rate":"#)
        writer.appendRawNumber(malformedRate)
        writer.appendRaw(#","malformed_kind":"#)
        writer.appendString(malformedKind.rawValue)
        writer.appendRaw(#","hang":"#)
        writer.appendBool(hang)
        writer.appendRaw(#","partial_rate":"#)
        writer.appendRawNumber(partialRate)
        writer.appendRaw(#","fail_next":"#)
        writer.appendInteger(Int64(failNext))
        writer.appendRaw(#","fail_status":"#)
        writer.appendInteger(Int64(failStatus))
        writer.appendRaw(#","seed":"#)
        writer.appendInteger(Int64(bitPattern: seed))
        writer.appendRaw(ascii: UInt8(ascii: "}"))
        return writer.bytes
    }
}

extension JSONWriter {
    /// A finite Double as a JSON number (`0.25`, `1`).
    mutating func appendRawNumber(_ value: Double) {
        precondition(value.isFinite, "JSON has no NaN or infinity")
        if value == value.rounded(), abs(value) < 1e15 {
            appendInteger(Int64(value))
        } else {
            for byte in "\(value)".utf8 { appendRaw(ascii: byte) }
        }
    }
}

/// Any JSON value, skipped: decoding `[String: AnyJSONValue]` reads an object's keys only.
private struct AnyJSONValue: Decodable {
    init(from decoder: any Decoder) throws {}
}
