import Foundation
import Testing

@testable import ChatRuntime

@Suite("HTTPRouter", .timeLimit(.minutes(1)))
struct HTTPRouterTests {
    /// A handler that answers with its own name, so a test can tell which route matched.
    private static func named(_ name: String) -> HTTPHandler {
        { _ in HTTPResponse.text(name) }
    }

    private static func matchedName(_ match: RouteMatch) async -> String? {
        guard case .found(let handler, _) = match else { return nil }
        return String(decoding: await handler(HTTPRequest(method: .GET, path: "/")).body, as: UTF8.self)
    }

    private static func parameters(_ match: RouteMatch) -> [String: String]? {
        guard case .found(_, let parameters) = match else { return nil }
        return parameters
    }

    @Test func extractsPathParameters() async {
        var router = HTTPRouter()
        router.add(.GET, "/v1/chats/{chat_id}/participants", Self.named("participants"))
        router.add(.POST, "/internal/chats/{chat_id}/participants/refresh", Self.named("refresh"))

        let match = router.match(method: .GET, path: "/v1/chats/42/participants")
        #expect(await Self.matchedName(match) == "participants")
        #expect(Self.parameters(match) == ["chat_id": "42"])

        let refresh = router.match(method: .POST, path: "/internal/chats/c-9/participants/refresh")
        #expect(await Self.matchedName(refresh) == "refresh")
        #expect(Self.parameters(refresh) == ["chat_id": "c-9"])
    }

    @Test func severalParametersKeepTheirNamesPerRoute() {
        var router = HTTPRouter()
        router.add(.GET, "/a/{first}/b/{second}", Self.named("get"))
        router.add(.DELETE, "/a/{x}/b/{y}", Self.named("delete"))
        #expect(Self.parameters(router.match(method: .GET, path: "/a/1/b/2")) == ["first": "1", "second": "2"])
        #expect(Self.parameters(router.match(method: .DELETE, path: "/a/1/b/2")) == ["x": "1", "y": "2"])
    }

    @Test func unknownPathIsNotFoundAndWrongMethodIsNotAllowed() {
        var router = HTTPRouter()
        router.add(.GET, "/v1/chats/{chat_id}/participants", Self.named("get"))
        router.add(.DELETE, "/v1/chats/{chat_id}/participants", Self.named("delete"))

        guard case .notFound = router.match(method: .GET, path: "/v1/chats/42") else {
            Issue.record("a shorter path must not match")
            return
        }
        guard case .notFound = router.match(method: .GET, path: "/v1/chats/42/participants/extra") else {
            Issue.record("a longer path must not match")
            return
        }
        guard case .methodNotAllowed(let allowed) = router.match(method: .POST, path: "/v1/chats/42/participants")
        else {
            Issue.record("a known path with another method must be 405")
            return
        }
        #expect(allowed == [.GET, .HEAD, .DELETE])
    }

    @Test func literalSegmentsWinOverParametersAndBacktrack() async {
        var router = HTTPRouter()
        router.add(.GET, "/chats/{id}", Self.named("by-id"))
        router.add(.GET, "/chats/search", Self.named("search"))
        router.add(.POST, "/chats/export", Self.named("export"))

        #expect(await Self.matchedName(router.match(method: .GET, path: "/chats/search")) == "search")
        #expect(await Self.matchedName(router.match(method: .GET, path: "/chats/7")) == "by-id")
        // The literal node has no GET: the parameter route answers instead of a 405.
        let backtracked = router.match(method: .GET, path: "/chats/export")
        #expect(await Self.matchedName(backtracked) == "by-id")
        #expect(Self.parameters(backtracked) == ["id": "export"])
    }

    @Test func headFallsBackToGet() async {
        var router = HTTPRouter()
        router.add(.GET, "/health", Self.named("health"))
        #expect(await Self.matchedName(router.match(method: .HEAD, path: "/health")) == "health")
        router.add(.HEAD, "/health", Self.named("head"))
        #expect(await Self.matchedName(router.match(method: .HEAD, path: "/health")) == "head")
    }

    @Test func oneTrailingSlashIsIgnoredButEmptySegmentsAreNot() async {
        var router = HTTPRouter()
        router.add(.GET, "/v1/chats", Self.named("chats"))
        router.add(.GET, "/", Self.named("root"))
        router.add(.GET, "/items/{id}/", Self.named("item"))

        #expect(await Self.matchedName(router.match(method: .GET, path: "/v1/chats/")) == "chats")
        #expect(await Self.matchedName(router.match(method: .GET, path: "/v1/chats")) == "chats")
        #expect(await Self.matchedName(router.match(method: .GET, path: "/")) == "root")
        #expect(await Self.matchedName(router.match(method: .GET, path: "/items/3")) == "item")
        guard case .notFound = router.match(method: .GET, path: "/v1//chats") else {
            Issue.record("an empty segment must not match")
            return
        }
        guard case .notFound = router.match(method: .GET, path: "/items//") else {
            Issue.record("a parameter must not match an empty segment")
            return
        }
    }

    @Test func parametersArePercentDecodedPerSegment() {
        var router = HTTPRouter()
        router.add(.GET, "/files/{name}/meta", Self.named("meta"))
        router.add(.GET, "/caf\u{e9}", Self.named("cafe"))

        #expect(Self.parameters(router.match(method: .GET, path: "/files/a%20b/meta")) == ["name": "a b"])
        // An encoded slash stays inside its segment; a plus is not a space in a path.
        #expect(Self.parameters(router.match(method: .GET, path: "/files/a%2Fb+c/meta")) == ["name": "a/b+c"])
        guard case .found = router.match(method: .GET, path: "/caf%C3%A9") else {
            Issue.record("literals compare after decoding")
            return
        }
        guard case .notFound = router.match(method: .GET, path: "/files/%zz/meta") else {
            Issue.record("an invalid escape must match nothing")
            return
        }
    }
}

@Suite("URLDecoding", .timeLimit(.minutes(1)))
struct URLDecodingTests {
    @Test func rejectsInvalidEscapes() {
        #expect(URLDecoding.pathSegments("/a/%") == nil)
        #expect(URLDecoding.pathSegments("/a/%4") == nil)
        #expect(URLDecoding.pathSegments("/a/%G1") == nil)
        #expect(URLDecoding.pathSegments("/a/%FF") == nil, "not UTF-8")
        #expect(URLDecoding.pathSegments("relative") == nil)
        #expect(URLDecoding.pathSegments("/%41/b%2fc") == ["A", "b/c"])
        #expect(URLDecoding.pathSegments("/") == [])
    }

    @Test func parsesQueries() {
        #expect(
            URLDecoding.queryParameters("page_size=10&page_token=a%2Bb+c") == [
                "page_size": "10", "page_token": "a+b c",
            ])
        #expect(URLDecoding.queryParameters("flag&x=1&x=2&&") == ["flag": "", "x": "1"])
        #expect(URLDecoding.queryParameters("bad=%zz") == nil)
        #expect(URLDecoding.queryParameters("") == [:])
    }

    @Test func headersLookUpIgnoringCase() {
        var headers = HTTPHeaders([("Authorization", "Bearer t"), ("X-Many", "1"), ("x-many", "2")])
        #expect(headers["authorization"] == "Bearer t")
        #expect(headers["AUTHORIZATION"] == "Bearer t")
        #expect(headers.values(for: "X-MANY") == ["1", "2"])
        #expect(headers["missing"] == nil)
        headers.replaceOrAdd(name: "x-MANY", value: "3")
        #expect(headers.values(for: "x-many") == ["3"])
    }

    @Test func parsesBaseURLs() {
        let plain = HTTPBaseURL("http://127.0.0.1:8080/api/")
        #expect(plain?.host == "127.0.0.1")
        #expect(plain?.port == 8080)
        #expect(plain?.pathPrefix == "/api")
        #expect(plain?.hostHeader == "127.0.0.1:8080")
        let v6 = HTTPBaseURL("http://[::1]:9000")
        #expect(v6?.host == "::1")
        #expect(v6?.port == 9000)
        #expect(v6?.pathPrefix == "")
        #expect(HTTPBaseURL("http://127.0.0.1")?.port == 80)
        #expect(plain?.isTLS == false)
        let tls = HTTPBaseURL("HTTPS://participants.internal.example/v2")
        #expect(tls?.isTLS == true)
        #expect(tls?.host == "participants.internal.example")
        #expect(tls?.port == 443)
        #expect(tls?.pathPrefix == "/v2")
        #expect(tls?.hostHeader == "participants.internal.example")
        #expect(HTTPBaseURL("ftp://127.0.0.1:1") == nil)
        #expect(HTTPBaseURL("https://") == nil)
        #expect(HTTPBaseURL("http://bad host:1") == nil)
        #expect(HTTPBaseURL("http://127.0.0.1:0") == nil)
        #expect(HTTPBaseURL("http://127.0.0.1:99999") == nil)
        #expect(HTTPBaseURL("http://user@127.0.0.1:1") == nil)
        #expect(HTTPBaseURL("127.0.0.1:1") == nil)
    }

    @Test func errorResponsesHaveTheServiceShape() throws {
        let response = HTTPResponse.error(status: 404, code: "not_found", message: "no \"chat\"")
        #expect(response.status == 404)
        #expect(response.headers.first { $0.0 == "Content-Type" }?.1 == "application/json")
        let decoded = try JSONDecoder().decode([String: [String: String]].self, from: Data(response.body))
        #expect(decoded == ["error": ["code": "not_found", "message": "no \"chat\""]])
    }
}
