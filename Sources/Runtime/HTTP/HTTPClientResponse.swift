/// A complete response an ``HTTPClient`` received.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    /// Response headers; lookups ignore case.
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
