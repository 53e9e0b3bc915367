import Foundation

/// Why a JSON body was refused; shared by ``EntryDecodingError`` and ``UpstreamDecodingError``.
public enum DecodingFailureReason: String, Sendable, Hashable {
    /// Not JSON at all: a syntax error, truncated text or invalid UTF-8.
    case notJSON
    /// A required field is absent.
    case missingField
    /// A field holds `null` where a value is required.
    case nullValue
    /// A field holds the wrong JSON type, e.g. a string where a number belongs.
    case wrongType
    /// The type is right but the value is not: a number out of range, an invalid chat id, a
    /// malformed timestamp.
    case invalidValue
}

/// What went wrong while decoding, in a form both public error types can carry.
struct DecodingFailure: Error, Sendable, Hashable {
    var reason: DecodingFailureReason
    /// Where, as a JSON path: `$` for the whole body, `$.chats[2].participants[0].role` deeper in.
    var path: String
    /// A human-readable explanation, for logs.
    var detail: String

    init(reason: DecodingFailureReason, path: String, detail: String) {
        self.reason = reason
        self.path = path
        self.detail = detail
    }

    /// Classifies any error thrown by `JSONDecoder`; anything that is not a `DecodingError` can
    /// only come from reading the bytes, so it counts as "not JSON".
    init(_ error: any Error) {
        guard let error = error as? DecodingError else {
            self.init(reason: .notJSON, path: "$", detail: String(describing: error))
            return
        }
        switch error {
        case .typeMismatch(_, let context):
            self.init(reason: .wrongType, path: Self.path(context.codingPath), detail: context.debugDescription)
        case .valueNotFound(_, let context):
            self.init(reason: .nullValue, path: Self.path(context.codingPath), detail: context.debugDescription)
        case .keyNotFound(let key, let context):
            self.init(
                reason: .missingField, path: Self.path(context.codingPath + [key]),
                detail: "missing field \"\(key.stringValue)\"")
        case .dataCorrupted(let context):
            // JSONDecoder reports syntax errors and invalid UTF-8 without a coding path.
            let reason: DecodingFailureReason = context.codingPath.isEmpty ? .notJSON : .invalidValue
            var detail = context.debugDescription
            if let underlying = context.underlyingError {
                detail += " (\(underlying))"
            }
            self.init(reason: reason, path: Self.path(context.codingPath), detail: detail)
        @unknown default:
            self.init(reason: .notJSON, path: "$", detail: String(describing: error))
        }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var path = "$"
        for key in codingPath {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path += ".\(key.stringValue)"
            }
        }
        return path
    }
}

extension KeyedDecodingContainer {
    /// Decodes a JSON integer, turning a fraction or an out-of-range number into a
    /// `dataCorrupted` error at this key. `JSONDecoder` on Linux throws an internal error for
    /// both, which it reports as "not valid JSON" with no coding path, hiding where the problem is.
    func decodeInt64(forKey key: Key) throws -> Int64 {
        do {
            return try decode(Int64.self, forKey: key)
        } catch let error as DecodingError {
            guard case .dataCorrupted = error else { throw error }
            throw numberError(forKey: key)
        } catch {
            throw numberError(forKey: key)
        }
    }

    private func numberError(forKey key: Key) -> DecodingError {
        var description = "expected an integer within Int64 range"
        if let number = try? decode(Double.self, forKey: key) {
            description += ", found \(number)"
        }
        return DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: description)
    }
}
