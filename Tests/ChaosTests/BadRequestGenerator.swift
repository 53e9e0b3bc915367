import Foundation

/// One generated request and what the server may answer to it.
struct BadRequest: Sendable {
    /// What an acceptable outcome is. 5xx and silence (no answer, no close) never are.
    enum Expectation: Sendable {
        /// A well-formed, authorized request: 2xx.
        case success
        /// 4xx or a closed connection.
        case rejection
        /// Either: the generator cannot tell (a random chat id may be a valid one).
        case successOrRejection
    }

    var category: String
    var bytes: [UInt8]
    /// The request is incomplete on purpose: the client half-closes after sending it, so the
    /// server sees the end of input instead of waiting for its read timeout.
    var halfClose: Bool
    var expectation: Expectation
}

/// A seeded generator of hostile HTTP requests against the service's routes: malformed request
/// lines, huge or many headers, huge bodies, invalid UTF-8, odd chat ids, bad JSON, wrong
/// methods and content types, truncated requests. The same seed gives the same requests.
struct BadRequestGenerator {
    let userToken: String
    let adminToken: String
    /// Chats the upstream knows: chat-1 … chat-`knownChats`.
    let knownChats: Int
    let maxBodySize: Int
    private var random: SplitMix64

    init(seed: UInt64, userToken: String, adminToken: String, knownChats: Int, maxBodySize: Int) {
        self.userToken = userToken
        self.adminToken = adminToken
        self.knownChats = knownChats
        self.maxBodySize = maxBodySize
        random = SplitMix64(seed: seed)
    }

    /// Categories with their weights (out of 100).
    static let categories: [(name: String, weight: Int)] = [
        ("valid_read", 10), ("bad_token", 5), ("odd_chat_id", 15), ("malformed_request_line", 13),
        ("huge_header", 4), ("many_headers", 4), ("huge_body", 2), ("invalid_utf8", 8), ("bad_json", 8),
        ("wrong_method", 10), ("bad_framing", 7), ("truncated", 9), ("trailing_garbage", 5),
    ]

    mutating func next() -> BadRequest {
        var pick = Int(random.next() % 100)
        var category = Self.categories[0].name
        for (name, weight) in Self.categories {
            if pick < weight {
                category = name
                break
            }
            pick -= weight
        }
        switch category {
        case "valid_read": return validRead()
        case "bad_token": return badToken()
        case "odd_chat_id": return oddChatID()
        case "malformed_request_line": return malformedRequestLine()
        case "huge_header": return hugeHeader()
        case "many_headers": return manyHeaders()
        case "huge_body": return hugeBody()
        case "invalid_utf8": return invalidUTF8()
        case "bad_json": return badJSON()
        case "wrong_method": return wrongMethod()
        case "bad_framing": return badFraming()
        case "truncated": return truncated()
        default: return trailingGarbage()
        }
    }

    // MARK: Categories

    private mutating func validRead() -> BadRequest {
        let path = oneOf(["/health", "/ready", "/v1/chats/\(knownChat())/participants"])
        return request(
            "valid_read", "GET \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(userToken)\r\n\r\n", .success)
    }

    private mutating func badToken() -> BadRequest {
        let authorization = oneOf([
            "", "Authorization: Bearer\r\n", "Authorization: Bearer \(userToken.dropLast(3))xyz\r\n",
            "Authorization: Basic dXNlcjpwYXNz\r\n", "Authorization: Bearer \(randomText(length: 40))\r\n",
            "Authorization: Bearer a.b.c\r\n", "Authorization: Bearer \(adminToken)\r\n",
            "Authorization: \(String(repeating: "Bearer ", count: 50))\r\n",
        ])
        return request(
            "bad_token", "GET /v1/chats/\(knownChat())/participants HTTP/1.1\r\nHost: x\r\n\(authorization)\r\n",
            .rejection)
    }

    private mutating func oddChatID() -> BadRequest {
        let id = oneOf([
            "", "%00", "%2F", "..", ".", "a%20b", "%7Bx%7D", "%", "%zz", "%C3%28", "%FF%FE",
            String(repeating: "x", count: 129 + Int(random.next() % 2000)),
            percentEncoded(randomBytes(count: 1 + Int(random.next() % 40))),
            randomText(length: 1 + Int(random.next() % 60)),
            "chat-\(random.next())", "chat-0", "chat--1", "CHAT-1", "chat-1;drop", "chat-1%0D%0AX:1",
            "%E2%80%AE1-tahc", "\u{00e9}t\u{00e9}",
        ])
        let path = oneOf(["/v1/chats/\(id)/participants", "/v1/chats/\(id)/participants/extra", "/v1/chats/\(id)"])
        return request(
            "odd_chat_id", "GET \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(userToken)\r\n\r\n",
            .successOrRejection)
    }

    private mutating func malformedRequestLine() -> BadRequest {
        let line = oneOf([
            "GET", "GET /health", "GET  /health  HTTP/1.1", "GET /health HTTP/9.9", "GET /health HTTP/1.1x",
            "GET /health HTTP/", "GET /health FOO/1.1", "get /health HTTP/1.1", "GET\t/health\tHTTP/1.1",
            "GET health HTTP/1.1", "GET http://%zz/ HTTP/1.1", "GET /\(String(repeating: "a", count: 9000)) HTTP/1.1",
            " GET /health HTTP/1.1", "GET /health HTTP/1.1 extra", "\u{0}\u{1}\u{2}", "HTTP/1.1 200 OK",
            "GET /he\u{0}alth HTTP/1.1", "GET /health?\(String(repeating: "%", count: 30)) HTTP/1.1",
            "GET /health?a=%zz HTTP/1.1",
            String(decoding: randomBytes(count: 1 + Int(random.next() % 200)), as: UTF8.self),
        ])
        return request("malformed_request_line", "\(line)\r\nHost: x\r\n\r\n", .rejection)
    }

    private mutating func hugeHeader() -> BadRequest {
        let size = 9000 + Int(random.next() % 40_000)
        return request(
            "huge_header", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: size))\r\n\r\n",
            .rejection)
    }

    private mutating func manyHeaders() -> BadRequest {
        let count = 50 + Int(random.next() % 3000)
        var text = "GET /health HTTP/1.1\r\nHost: x\r\n"
        for index in 0..<count { text += "X-H\(index): \(index)\r\n" }
        // Under the 8 KiB header limit /health answers; over it the request is refused.
        return request("many_headers", text + "\r\n", .successOrRejection)
    }

    private mutating func hugeBody() -> BadRequest {
        let path = oneOf([
            "/internal/participants/refresh", "/internal/chats/chat-1/participants/refresh",
            "/v1/chats/chat-1/participants",
        ])
        if random.next() % 2 == 0 {
            // Declared too large: refused before the body is read.
            let text =
                "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(maxBodySize + 1 + Int(random.next() % 1_000_000_000))\r\n\r\n"
            return BadRequest(category: "huge_body", bytes: Array(text.utf8), halfClose: true, expectation: .rejection)
        }
        let size = maxBodySize + 1 + Int(random.next() % 65_536)
        let head =
            "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(size)\r\n\r\n"
        return BadRequest(
            category: "huge_body", bytes: Array(head.utf8) + [UInt8](repeating: UInt8(ascii: "{"), count: size),
            halfClose: false, expectation: .rejection)
    }

    private mutating func invalidUTF8() -> BadRequest {
        let junk = randomBytes(count: 1 + Int(random.next() % 20)).map { $0 | 0x80 }
        var bytes: [UInt8]
        switch random.next() % 3 {
        case 0:
            bytes =
                Array("GET /v1/chats/".utf8) + junk
                + Array("/participants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(userToken)\r\n\r\n".utf8)
            return BadRequest(category: "invalid_utf8", bytes: bytes, halfClose: false, expectation: .rejection)
        case 1:
            bytes = Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Junk: ".utf8) + junk + Array("\r\n\r\n".utf8)
            return BadRequest(
                category: "invalid_utf8", bytes: bytes, halfClose: false, expectation: .successOrRejection)
        default:
            bytes =
                Array("GET /v1/chats/chat-1/participants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ".utf8) + junk
                + Array("\r\n\r\n".utf8)
            return BadRequest(category: "invalid_utf8", bytes: bytes, halfClose: false, expectation: .rejection)
        }
    }

    private mutating func badJSON() -> BadRequest {
        let body = oneOf([
            "{", "}", "[1,2", #"{"a":}"#, "null", "\u{0}", #"{"job":"\#(randomText(length: 30))"}"#,
            String(repeating: "[", count: 5000),
            String(decoding: randomBytes(count: 1 + Int(random.next() % 300)), as: UTF8.self),
        ])
        let contentType = oneOf([
            "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "", "application/json; charset=utf-16",
        ])
        let (path, token) = oneOf([
            ("/internal/participants/refresh", "wrong-admin-token"),
            ("/internal/chats/chat-1/participants/refresh", "wrong-admin-token"),
            ("/internal/chats/%zz/participants/refresh", adminToken),
            ("/internal/chats/\(String(repeating: "y", count: 200))/participants/refresh", adminToken),
            ("/v1/chats/chat-1/participants", userToken),
        ])
        let typeLine = contentType.isEmpty ? "" : "Content-Type: \(contentType)\r\n"
        let bodyBytes = Array(body.utf8)
        let text =
            "POST \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\(typeLine)Content-Length: \(bodyBytes.count)\r\n\r\n"
        return BadRequest(
            category: "bad_json", bytes: Array(text.utf8) + bodyBytes, halfClose: false, expectation: .rejection)
    }

    private mutating func wrongMethod() -> BadRequest {
        let method = oneOf([
            "PUT", "DELETE", "PATCH", "OPTIONS", "POST", "FOO", "TRACE", "CONNECT", "PROPFIND", "GETT", "G",
        ])
        let path = oneOf([
            "/health", "/ready", "/metrics", "/v1/chats/chat-1/participants", "/internal/participants/status",
        ])
        let body = ["PUT", "PATCH", "POST"].contains(method) ? "Content-Length: 2\r\n\r\n{}" : "\r\n"
        return request(
            "wrong_method", "\(method) \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(userToken)\r\n\(body)",
            .rejection)
    }

    private mutating func badFraming() -> BadRequest {
        let head = "POST /internal/participants/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
        let framing = oneOf([
            "Content-Length: -1\r\n\r\n", "Content-Length: abc\r\n\r\n",
            "Content-Length: 5\r\nContent-Length: 7\r\n\r\n12345",
            "Transfer-Encoding: chunked\r\n\r\nzz\r\n", "Transfer-Encoding: chunked\r\n\r\n5\r\n12",
            "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", "Transfer-Encoding: gzip\r\n\r\nxx",
            "Content-Length: 10\r\n\r\n12", "Content-Length: 99999999999999999999999\r\n\r\n",
        ])
        return BadRequest(
            category: "bad_framing", bytes: Array((head + framing).utf8), halfClose: true, expectation: .rejection)
    }

    private mutating func truncated() -> BadRequest {
        let whole = Array(
            "GET /v1/chats/\(knownChat())/participants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(userToken)\r\n\r\n"
                .utf8)
        let cut = Int(random.next() % UInt64(whole.count - 1))
        return BadRequest(
            category: "truncated", bytes: Array(whole.prefix(cut)), halfClose: true, expectation: .rejection)
    }

    private mutating func trailingGarbage() -> BadRequest {
        let garbage = randomBytes(count: 1 + Int(random.next() % 100))
        // The first, valid, request is answered; what follows may be refused or ignored.
        let bytes = Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8) + garbage
        return BadRequest(category: "trailing_garbage", bytes: bytes, halfClose: false, expectation: .success)
    }

    // MARK: Helpers

    private func request(_ category: String, _ text: String, _ expectation: BadRequest.Expectation) -> BadRequest {
        BadRequest(category: category, bytes: Array(text.utf8), halfClose: false, expectation: expectation)
    }

    private mutating func knownChat() -> String { "chat-\(1 + Int(random.next() % UInt64(knownChats)))" }

    private mutating func oneOf<T>(_ choices: [T]) -> T { choices[Int(random.next() % UInt64(choices.count))] }

    private mutating func randomBytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    private mutating func randomText(length: Int) -> String {
        let alphabet = Array("abcXYZ019-_.:~!*'();@&=+$,/?#[]% ")
        return String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
    }

    private func percentEncoded(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%%%02X", $0) }.joined()
    }
}

/// SplitMix64: a seeded sequence for the generators.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
