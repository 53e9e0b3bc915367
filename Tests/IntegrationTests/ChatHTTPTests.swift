import Actors
import ChatService
import Foundation
import StubUpstream
import TestSupport
import Testing

/// The chat API through the real HTTP server, the whole service in-process (``buildServices``)
/// with a real redis-server, the stub upstream and each store: endpoints, membership,
/// pagination, idempotency, auth errors, Redis stopped, restarts and two instances sharing one
/// PostgreSQL.
@Suite("Chat API over HTTP", .serialized, .timeLimit(.minutes(3)))
struct ChatHTTPTests {
    static func token(_ user: String) -> String {
        mintUserToken(subject: user, secret: ServiceHTTPTests.jwtSecret, validFor: .seconds(3600))
    }

    /// The environment of a service on `location`'s store.
    static func environment(_ location: StoreKind.Location, extra: [String: String] = [:]) -> [String: String] {
        var environment: [String: String] = ["CHAT_STORE": location.kind.rawValue]
        switch location.kind {
        case .sqlite: environment["CHAT_SQLITE_PATH"] = location.path
        case .postgres: environment["CHAT_POSTGRES_URL"] = location.path
        }
        return environment.merging(extra) { $1 }
    }

    static func app(_ location: StoreKind.Location, extra: [String: String] = [:]) async throws -> InProcessService {
        try await ServiceHTTPTests.startService(chats: 30, environment: environment(location, extra: extra))
    }

    // MARK: Endpoints and membership

    @Test(arguments: StoreKind.allCases)
    func createReadAddMembersAndPost(kind: StoreKind) async throws {
        let location = try await kind.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location)

        let created = await app.call("POST", "/v1/chats", as: "alice", json: ["title": "Lunch"])
        #expect(created.status == 201)
        let chat = try #require(created.json["chat_id"] as? String)
        #expect(created.json["hosted"] as? Bool == true)
        #expect(created.json["title"] as? String == "Lunch")
        #expect(created.json["created_by"] as? String == "alice")
        #expect(Self.memberIDs(created.json) == ["alice"])

        let read = await app.call("GET", "/v1/chats/\(chat)", as: "alice")
        #expect(read.status == 200)
        #expect(read.json["chat_id"] as? String == chat)

        // Not a member yet: 403 on every chat route.
        for (method, path) in [
            ("GET", "/v1/chats/\(chat)"), ("GET", "/v1/chats/\(chat)/messages"), ("POST", "/v1/chats/\(chat)/messages"),
        ] {
            let refused = await app.call(method, path, as: "bob", json: ["text": "hi"])
            #expect(refused.status == 403, "\(method) \(path)")
            #expect(ServiceHTTPTests.errorCode(refused.json) == "not_a_member")
        }
        #expect(await app.call("POST", "/v1/chats/\(chat)/members", as: "bob", json: ["user_id": "bob"]).status == 403)

        let added = await app.call("POST", "/v1/chats/\(chat)/members", as: "alice", json: ["user_id": "bob"])
        #expect(added.status == 201)
        #expect(added.json["added"] as? Bool == true)
        #expect(
            await app.call("POST", "/v1/chats/\(chat)/members", as: "alice", json: ["user_id": "bob"]).status == 200)

        let posted = await app.call("POST", "/v1/chats/\(chat)/messages", as: "bob", json: ["text": "hi alice"])
        #expect(posted.status == 201)
        #expect(posted.json["author_id"] as? String == "bob")
        #expect(posted.json["text"] as? String == "hi alice")
        #expect(posted.json["id"] is String)
        #expect(
            await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "hi bob"]).status == 201)

        let listed = await app.call("GET", "/v1/chats/\(chat)/messages", as: "alice")
        #expect(listed.status == 200)
        #expect(Self.texts(listed.json) == ["hi bob", "hi alice"])
        // Hosted chats' members are not in upstream's lists: ids only, flagged, never an error.
        #expect(listed.json["authors_resolved"] as? Bool == false)
        #expect(
            Self.memberIDs(await app.call("GET", "/v1/chats/\(chat)", as: "bob").json).sorted() == ["alice", "bob"])

        // Unknown and malformed chats.
        #expect(
            ServiceHTTPTests.errorCode(await app.call("GET", "/v1/chats/c-unknown", as: "alice").json)
                == "chat_not_found")
        #expect(await app.call("GET", "/v1/chats/c-unknown/messages", as: "alice").status == 404)
        #expect(await app.call("GET", "/v1/chats/a%20b/messages", as: "alice").status == 400)

        // The created chat is tracked for the background refresh (written to Redis within ~1 s).
        let tracked = await eventually(timeout: .seconds(10)) {
            let score = (try? await app.redis.cli("ZSCORE", "participants:v2:{sync}:tracked", chat)) ?? ""
            return !score.isEmpty
        }
        #expect(tracked)
        await app.close()
    }

    @Test func everyChatRouteNeedsAValidToken() async throws {
        let location = try await StoreKind.sqlite.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location)
        let forged = mintUserToken(subject: "alice", secret: "another-secret", validFor: .seconds(60))
        let expired = mintUserToken(
            subject: "alice", secret: ServiceHTTPTests.jwtSecret, validFor: .seconds(60),
            now: Date().addingTimeInterval(-3600))
        let routes = [
            ("POST", "/v1/chats"), ("GET", "/v1/chats/c-1"), ("POST", "/v1/chats/c-1/members"),
            ("POST", "/v1/chats/c-1/messages"), ("GET", "/v1/chats/c-1/messages"),
        ]
        for (method, path) in routes {
            for token in [nil, forged, expired, "not-a-jwt"] {
                let reply = await app.call(method, path, token: token, json: ["text": "x"])
                #expect(reply.status == 401, "\(method) \(path)")
                #expect(ServiceHTTPTests.errorCode(reply.json) == "unauthorized")
            }
        }
        await app.close()
    }

    @Test(arguments: StoreKind.allCases)
    func postingWithAnIdempotencyKeyStoresOnce(kind: StoreKind) async throws {
        let location = try await kind.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location)
        let chat = try #require(await app.call("POST", "/v1/chats", as: "alice").json["chat_id"] as? String)
        let key = ["Idempotency-Key": "order-42"]

        let first = await app.call(
            "POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "pay"], headers: key)
        #expect(first.status == 201)
        let again = await app.call(
            "POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "pay"], headers: key)
        #expect(again.status == 200)
        #expect(again.json["id"] as? String == first.json["id"] as? String)
        let reused = await app.call(
            "POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "pay twice"], headers: key)
        #expect(reused.status == 422)
        #expect(ServiceHTTPTests.errorCode(reused.json) == "idempotency_key_reused")
        let badKey = await app.call(
            "POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "pay"],
            headers: ["Idempotency-Key": "has space"])
        #expect(badKey.status == 400)
        #expect(Self.texts(await app.call("GET", "/v1/chats/\(chat)/messages", as: "alice").json) == ["pay"])
        await app.close()
    }

    @Test(arguments: StoreKind.allCases)
    func messagesPageNewestFirst(kind: StoreKind) async throws {
        let location = try await kind.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location, extra: ["CHAT_MESSAGE_MAX_BYTES": "16"])
        let chat = try #require(await app.call("POST", "/v1/chats", as: "alice").json["chat_id"] as? String)
        for index in 0..<7 {
            #expect(
                await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "m\(index)"]).status
                    == 201)
        }
        var seen: [String] = []
        var path = "/v1/chats/\(chat)/messages?limit=3"
        var pages = 0
        for _ in 0..<5 {
            let page = await app.call("GET", path, as: "alice")
            #expect(page.status == 200)
            pages += 1
            seen += Self.texts(page.json)
            guard let next = page.json["next_before"] as? String else { break }
            path = "/v1/chats/\(chat)/messages?limit=3&before=\(next)"
        }
        #expect(seen == (0..<7).reversed().map { "m\($0)" })
        #expect(pages == 3)
        #expect(Self.texts(await app.call("GET", "/v1/chats/\(chat)/messages", as: "alice").json).count == 7)

        for query in ["limit=0", "limit=201", "limit=x", "before=abc", "before=-1"] {
            let reply = await app.call("GET", "/v1/chats/\(chat)/messages?\(query)", as: "alice")
            #expect(reply.status == 400, "\(query)")
            #expect(ServiceHTTPTests.errorCode(reply.json) == "invalid_argument")
        }
        // The size limit (16 bytes here), empty texts and malformed bodies.
        let large = await app.call(
            "POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": String(repeating: "é", count: 9)])
        #expect(large.status == 413)
        #expect(ServiceHTTPTests.errorCode(large.json) == "message_too_large")
        #expect(
            await app.call(
                "POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": String(repeating: "é", count: 8)]
            ).status == 201)
        #expect(await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": ""]).status == 400)
        #expect(await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": 5]).status == 400)
        #expect(await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", raw: "{not json").status == 400)
        await app.close()
    }

    /// Upstream's participants are members of the chats upstream knows, and their messages come
    /// back with display data.
    @Test func upstreamParticipantsPostWithDisplayData() async throws {
        let location = try await StoreKind.sqlite.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location)
        let posted = await app.call(
            "POST", "/v1/chats/chat-3/messages", as: "u-3-1", json: ["text": "from upstream's member"])
        #expect(posted.status == 201)
        #expect((posted.json["author"] as? [String: Any])?["display_name"] as? String == "User 1 of chat 3 (v1)")
        #expect(
            await app.call("POST", "/v1/chats/chat-3/messages", as: "alice", json: ["text": "intruder"]).status == 403)

        let listed = await app.call("GET", "/v1/chats/chat-3/messages", as: "u-3-2")
        #expect(listed.status == 200)
        #expect(listed.json["authors_resolved"] as? Bool == true)
        #expect(listed.json["participants_available"] as? Bool == true)

        // A member added here joins upstream's list for this service.
        #expect(
            await app.call("POST", "/v1/chats/chat-3/members", as: "u-3-0", json: ["user_id": "alice"]).status == 201)
        #expect(
            await app.call("POST", "/v1/chats/chat-3/messages", as: "alice", json: ["text": "now a member"]).status
                == 201)
        let view = await app.call("GET", "/v1/chats/chat-3", as: "alice")
        #expect(view.json["hosted"] as? Bool == false)
        #expect(Set(Self.memberIDs(view.json)) == ["u-3-0", "u-3-1", "u-3-2", "u-3-3", "alice"])
        let afterwards = await app.call("GET", "/v1/chats/chat-3/messages", as: "alice")
        #expect(afterwards.json["authors_resolved"] as? Bool == false, "alice has no display data upstream")
        await app.close()
    }

    /// Without the participants layer only the store's members count.
    @Test func withTheParticipantsIntegrationDisabledTheStoreDecides() async throws {
        let location = try await StoreKind.sqlite.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location, extra: ["PARTICIPANTS_INTEGRATION_DISABLED": "true"])
        let chat = try #require(
            await app.call("POST", "/v1/chats", as: "alice", json: ["members": ["bob"]]).json["chat_id"] as? String)
        #expect(await app.call("POST", "/v1/chats/\(chat)/messages", as: "bob", json: ["text": "hi"]).status == 201)
        #expect(await app.call("GET", "/v1/chats/\(chat)/messages", as: "carol").status == 403)
        #expect(await app.call("GET", "/v1/chats/chat-3/messages", as: "u-3-0").status == 404)
        await app.close()
    }

    // MARK: Failures

    /// Redis killed, then upstream gone too: hosted chats work on the store alone, an upstream
    /// chat read before works from the last known participants, one never read cannot be
    /// decided (503), and nothing hangs.
    @Test(arguments: StoreKind.allCases)
    func chatsWorkWithRedisStopped(kind: StoreKind) async throws {
        let location = try await kind.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location)
        #expect(await app.call("GET", "/v1/chats/chat-5/messages", as: "u-5-0").status == 200)

        await app.redis.kill()
        let created = await app.call("POST", "/v1/chats", as: "alice")
        #expect(created.status == 201)
        let chat = try #require(created.json["chat_id"] as? String)
        #expect(
            await app.call("POST", "/v1/chats/\(chat)/members", as: "alice", json: ["user_id": "bob"]).status == 201)
        #expect(
            await app.call("POST", "/v1/chats/\(chat)/messages", as: "bob", json: ["text": "no redis"]).status == 201)
        #expect(Self.texts(await app.call("GET", "/v1/chats/\(chat)/messages", as: "alice").json) == ["no redis"])
        #expect(await app.call("GET", "/v1/chats/\(chat)/messages", as: "mallory").status == 403)
        // Upstream still answers: a cold upstream chat works through it.
        #expect(
            await app.call("POST", "/v1/chats/chat-6/messages", as: "u-6-0", json: ["text": "via upstream"]).status
                == 201)

        await app.stub.shutdown()
        let warm = await app.call("POST", "/v1/chats/chat-5/messages", as: "u-5-1", json: ["text": "last known"])
        #expect(warm.status == 201)
        #expect((warm.json["author"] as? [String: Any])?["display_name"] as? String == "User 1 of chat 5 (v1)")
        #expect(await app.call("POST", "/v1/chats/chat-5/messages", as: "alice", json: ["text": "x"]).status == 403)
        let cold = await app.call("POST", "/v1/chats/chat-7/messages", as: "u-7-0", json: ["text": "unknown"])
        #expect(cold.status == 503)
        #expect(ServiceHTTPTests.errorCode(cold.json) == "membership_unknown")
        #expect(
            await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "still fine"]).status
                == 201)
        let page = await app.call("GET", "/v1/chats/\(chat)/messages", as: "alice")
        #expect(page.status == 200)
        #expect(page.json["participants_available"] as? Bool == false)
        await app.close()
    }

    /// A frozen Redis (SIGSTOP) answers nothing: the participants lookup behind a chat request
    /// is bounded, so requests answer instead of hanging.
    @Test func aFrozenRedisDoesNotHangChatRequests() async throws {
        let location = try await StoreKind.sqlite.newLocation()
        defer { location.remove() }
        let app = try await Self.app(location, extra: ["CHAT_PARTICIPANTS_TIMEOUT": "1s"])
        let chat = try #require(await app.call("POST", "/v1/chats", as: "alice").json["chat_id"] as? String)
        app.redis.freeze()
        #expect(
            await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "frozen"]).status == 201)
        let upstreamChat = await app.call("POST", "/v1/chats/chat-8/messages", as: "u-8-0", json: ["text": "frozen"])
        #expect(upstreamChat.status == 201 || upstreamChat.status == 503, "answered: \(upstreamChat.status)")
        #expect(await app.call("GET", "/v1/chats/\(chat)/messages", as: "alice").status == 200)
        #expect(await app.call("POST", "/v1/chats", as: "alice").status == 201)
        app.redis.thaw()
        await app.close()
    }

    /// A stopped PostgreSQL costs a bounded wait and a 503, never a hung request.
    @Test func aStoppedPostgresAnswers503() async throws {
        try await withPostgresServer { server in
            let location = StoreKind.Location(kind: .postgres, path: try await server.createDatabase())
            let app = try await Self.app(location, extra: ["CHAT_STORE_TIMEOUT": "1s"])
            let chat = try #require(await app.call("POST", "/v1/chats", as: "alice").json["chat_id"] as? String)
            await server.stop()
            let reply = await app.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "lost?"])
            #expect(reply.status == 503)
            #expect(ServiceHTTPTests.errorCode(reply.json) == "store_unavailable")
            #expect(await app.call("POST", "/v1/chats", as: "alice").status == 503)
            await app.close()
        }
    }

    // MARK: Durability and sharing

    @Test(arguments: StoreKind.allCases)
    func chatsSurviveARestart(kind: StoreKind) async throws {
        let location = try await kind.newLocation()
        defer { location.remove() }
        let first = try await Self.app(location)
        let chat = try #require(await first.call("POST", "/v1/chats", as: "alice").json["chat_id"] as? String)
        #expect(
            await first.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "kept"]).status == 201)
        await first.close()

        let second = try await Self.app(location)
        #expect(Self.texts(await second.call("GET", "/v1/chats/\(chat)/messages", as: "alice").json) == ["kept"])
        await second.close()
    }

    @Test func twoInstancesOnOnePostgresSeeEachOthersMessages() async throws {
        let location = try await StoreKind.postgres.newLocation()
        async let startA = Self.app(location)
        async let startB = Self.app(location)
        let (a, b) = try await (startA, startB)

        let chat = try #require(await a.call("POST", "/v1/chats", as: "alice").json["chat_id"] as? String)
        #expect(await b.call("GET", "/v1/chats/\(chat)", as: "alice").status == 200)
        #expect(await b.call("POST", "/v1/chats/\(chat)/members", as: "alice", json: ["user_id": "bob"]).status == 201)
        #expect(await a.call("POST", "/v1/chats/\(chat)/messages", as: "bob", json: ["text": "from a"]).status == 201)
        #expect(await b.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "from b"]).status == 201)
        #expect(
            Self.texts(await a.call("GET", "/v1/chats/\(chat)/messages", as: "alice").json) == ["from b", "from a"])
        #expect(Self.texts(await b.call("GET", "/v1/chats/\(chat)/messages", as: "bob").json) == ["from b", "from a"])
        // One idempotency key across instances: one message.
        let key = ["Idempotency-Key": "k-shared"]
        let onA = await a.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "once"], headers: key)
        let onB = await b.call("POST", "/v1/chats/\(chat)/messages", as: "alice", json: ["text": "once"], headers: key)
        #expect(onA.status == 201 && onB.status == 200)
        #expect(onA.json["id"] as? String == onB.json["id"] as? String)
        await a.close()
        await b.close()
    }

    // MARK: Helpers

    static func texts(_ json: [String: Any]) -> [String] {
        (json["messages"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
    }

    static func memberIDs(_ json: [String: Any]) -> [String] {
        (json["members"] as? [[String: Any]] ?? []).compactMap { $0["user_id"] as? String }
    }
}

extension InProcessService {
    /// A request as `user` (a fresh token), with a JSON body.
    func call(
        _ method: String, _ path: String, as user: String, json: Any? = nil, raw: String? = nil,
        headers: [String: String] = [:]
    ) async -> (status: Int, json: [String: Any]) {
        await call(method, path, token: ChatHTTPTests.token(user), json: json, raw: raw, headers: headers)
    }

    func call(
        _ method: String, _ path: String, token: String?, json: Any? = nil, raw: String? = nil,
        headers: [String: String] = [:]
    ) async -> (status: Int, json: [String: Any]) {
        var headers = headers
        if let token { headers["Authorization"] = "Bearer \(token)" }
        var body: Data?
        if method == "POST" {
            headers["Content-Type"] = "application/json"
            if let raw {
                body = Data(raw.utf8)
            } else if let json {
                body = try? JSONSerialization.data(withJSONObject: json)
            }
        }
        guard
            let reply = await httpRequest(method, httpBase + path, headers: headers, body: body, timeout: .seconds(15))
        else {
            return (0, [:])
        }
        return (reply.status, Self.object(reply.body))
    }
}
