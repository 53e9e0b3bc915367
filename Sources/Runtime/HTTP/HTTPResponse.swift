import Foundation

/// A response a handler returns; the server writes it to the connection on the loop.
///
/// `Content-Length` is always computed by the server from `body`; a `Content-Length` or
/// `Connection` in `headers` is ignored, as is a header whose name or value holds CR or LF. For HEAD requests the server sends the headers and the length of
/// `body`, but not the body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `value` encoded as JSON, `Content-Type: application/json`. An encoding failure is a
    /// programming error in the caller's type; it answers 500 with an error body.
    public static func json<T: Encodable>(_ value: T, status: Int = 200) -> HTTPResponse {
        do {
            return json(bytes: Array(try jsonEncoder.encode(value)), status: status)
        } catch {
            return .error(status: 500, code: "encoding_failed", message: "the response could not be encoded")
        }
    }

    /// Pre-encoded JSON bytes, `Content-Type: application/json`. The hot path: callers keep
    /// encoded bytes and skip the encoder.
    public static func json(bytes: [UInt8], status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: bytes)
    }

    /// The service's error shape: `{"error":{"code":...,"message":...}}`.
    public static func error(status: Int, code: String, message: String) -> HTTPResponse {
        let body = ErrorBody(error: .init(code: code, message: message))
        // Encoding two strings cannot fail; the fallback keeps the shape anyway.
        let bytes =
            (try? JSONEncoder().encode(body)).map { Array($0) }
            ?? Array(#"{"error":{"code":"internal","message":"internal error"}}"#.utf8)
        return json(bytes: bytes, status: status)
    }

    /// A text body, `text/plain; charset=utf-8` unless `contentType` says otherwise.
    public static func text(
        _ string: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8"
    ) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: Array(string.utf8))
    }
}

/// Dates as ISO 8601 (what every JSON API of the service uses), keys sorted for stable output.
private let jsonEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

private struct ErrorBody: Encodable {
    struct Detail: Encodable {
        let code: String
        let message: String
    }
    let error: Detail
}
