import CLibEvent

/// The HTTP methods the server routes and the client sends.
///
/// TRACE, CONNECT, QUERY and the WebDAV methods are left out on purpose: no route can use them.
/// The server answers them as a method without a route (405 with `Allow` on a known path, 404
/// elsewhere), except CONNECT: 501.
public enum HTTPMethod: String, Sendable, Hashable, CaseIterable {
    case GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS
}

extension HTTPMethod {
    /// The evhttp command for this method (the client sends requests with evhttp).
    var evhttpCommand: evhttp_cmd_type {
        switch self {
        case .GET: EVHTTP_REQ_GET
        case .HEAD: EVHTTP_REQ_HEAD
        case .POST: EVHTTP_REQ_POST
        case .PUT: EVHTTP_REQ_PUT
        case .DELETE: EVHTTP_REQ_DELETE
        case .PATCH: EVHTTP_REQ_PATCH
        case .OPTIONS: EVHTTP_REQ_OPTIONS
        }
    }
}
