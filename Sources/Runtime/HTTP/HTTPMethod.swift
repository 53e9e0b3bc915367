import CLibEvent

/// The HTTP methods the server routes and the client sends.
///
/// TRACE and CONNECT are left out on purpose: the server never enables them, so evhttp answers
/// them with 501 before any route is consulted.
public enum HTTPMethod: String, Sendable, Hashable, CaseIterable {
    case GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS
}

extension HTTPMethod {
    /// The method of an evhttp command, or nil for a method this type does not model.
    init?(evhttpCommand command: evhttp_cmd_type) {
        switch command {
        case EVHTTP_REQ_GET: self = .GET
        case EVHTTP_REQ_HEAD: self = .HEAD
        case EVHTTP_REQ_POST: self = .POST
        case EVHTTP_REQ_PUT: self = .PUT
        case EVHTTP_REQ_DELETE: self = .DELETE
        case EVHTTP_REQ_PATCH: self = .PATCH
        case EVHTTP_REQ_OPTIONS: self = .OPTIONS
        default: return nil
        }
    }

    /// The evhttp command for this method.
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

    /// The evhttp bit mask of every method this type models, for `evhttp_set_allowed_methods`.
    static var evhttpAllowedMask: UInt16 {
        allCases.reduce(0) { $0 | UInt16(truncatingIfNeeded: $1.evhttpCommand.rawValue) }
    }
}
