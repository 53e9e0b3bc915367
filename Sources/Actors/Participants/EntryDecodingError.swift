/// A cached entry that could not be read back, e.g. written by an incompatible version or
/// corrupted. Callers treat the entry as missing.
public struct EntryDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it was.
    public var reason: DecodingFailureReason
    /// Where in the JSON, e.g. `$.participants[3].role`.
    public var path: String
    /// A human-readable explanation, for logs.
    public var detail: String

    public init(reason: DecodingFailureReason, path: String, detail: String) {
        self.reason = reason
        self.path = path
        self.detail = detail
    }

    init(_ failure: DecodingFailure) {
        self.init(reason: failure.reason, path: failure.path, detail: failure.detail)
    }

    public var description: String { "cached entry unreadable: \(reason) at \(path): \(detail)" }
}
