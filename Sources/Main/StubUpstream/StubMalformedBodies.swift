import ChatRuntime

/// Bodies that break the participants contract, one kind at a time, for the malformed fault.
enum StubMalformedBodies {
    /// A 200 answer of `kind` (not `.mixed`) standing in for `valid`, the body `route` would
    /// have sent.
    static func response(kind: StubFaults.MalformedKind, route: StubStats.Route, valid: [UInt8]) -> HTTPResponse {
        switch kind {
        case .notJSON, .mixed:
            return HTTPResponse(
                status: 200, headers: [("Content-Type", "text/html")],
                body: Array("<html><body><h1>502 Bad Gateway</h1></body></html>".utf8))
        case .wrongTypes:
            return .json(bytes: Array(wrongTypes(route).utf8))
        case .truncated:
            // Half of a JSON object never closes it, so it is never valid JSON.
            return .json(bytes: Array(valid.prefix(max(1, valid.count / 2))))
        }
    }

    /// Valid JSON whose fields have the wrong types for `route`.
    private static func wrongTypes(_ route: StubStats.Route) -> String {
        switch route {
        case .participants:
            #"{"chat_id":"chat-1","participants":"none","version":"1"}"#
        case .batchGet:
            #"{"chats":{"chat-1":[]},"not_found":"none"}"#
        case .listChats:
            #"{"chat_ids":[1,2,3],"next_page_token":7}"#
        }
    }
}
