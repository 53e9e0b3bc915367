import CLibEvent

/// Copies the parts of an evhttp request or response into Swift values (the HTTP client).
enum EvhttpMessage {
    /// The input headers, in order.
    static func headers(of message: UnsafeMutablePointer<evhttp_request>) -> HTTPHeaders {
        var headers = HTTPHeaders()
        guard let list = evhttp_request_get_input_headers(message) else { return headers }
        headers.reserveCapacity(8)
        var field = list.pointee.tqh_first
        while let current = field {
            if let key = current.pointee.key, let value = current.pointee.value {
                headers.add(name: String(cString: key), value: String(cString: value))
            }
            field = current.pointee.next.tqe_next
        }
        return headers
    }

    /// The input body, copied out of its evbuffer.
    static func body(of message: UnsafeMutablePointer<evhttp_request>) -> [UInt8] {
        guard let input = evhttp_request_get_input_buffer(message) else { return [] }
        let length = evbuffer_get_length(input)
        guard length > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: length) { bytes, count in
            count = max(0, evbuffer_copyout(input, bytes.baseAddress, length))
        }
    }
}
