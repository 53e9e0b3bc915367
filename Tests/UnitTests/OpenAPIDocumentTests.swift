import ChatRuntime
import ChatService
import Foundation
import Logging
import Prometheus
import TestSupport
import Testing

@testable import Actors

/// docs/openapi.yaml against the code: it lists exactly the routes the router serves (method and
/// path template), and `GET /openapi.yaml` serves it byte for byte. Whether the statuses and
/// shapes it promises are what the service answers is `make contract`'s job (schemathesis).
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    static let documentPath = ConfigurationDocsTests.repositoryRoot.appendingPathComponent("docs/openapi.yaml").path

    struct Route: Hashable, CustomStringConvertible {
        var method: String
        var path: String
        var description: String { "\(method) \(path)" }
    }

    @Test func documentListsExactlyTheRoutesTheRouterServes() async throws {
        let served = try await Self.servedRoutes(environment: [:])
        let documented = try Self.documentedRoutes()
        #expect(
            served.subtracting(documented).sorted { $0.description < $1.description } == [],
            "served, not in docs/openapi.yaml")
        #expect(
            documented.subtracting(served).sorted { $0.description < $1.description } == [],
            "in docs/openapi.yaml, not served")
    }

    /// With PARTICIPANTS_INTEGRATION_DISABLED the router serves a subset: the participants routes
    /// answer 503 except the job route, which is not registered at all (404), as the document says.
    @Test func withTheParticipantsIntegrationDisabledEveryRouteServedIsDocumented() async throws {
        let served = try await Self.servedRoutes(environment: ["PARTICIPANTS_INTEGRATION_DISABLED": "true"])
        let documented = try Self.documentedRoutes()
        #expect(served.isSubset(of: documented))
        #expect(
            documented.subtracting(served) == [Route(method: "GET", path: "/internal/participants/refresh/{job_id}")])
    }

    @Test func theServedDocumentIsTheFileByteForByte() throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: Self.documentPath))
        let response = HTTPFrontend.openAPIDocument
        #expect(response.status == 200)
        #expect(response.headers.first { $0.0 == "Content-Type" }?.1 == "application/yaml")
        // A Bool, so a failure names the problem instead of printing both documents as bytes.
        let same = response.body == Array(file)
        #expect(same, "GET /openapi.yaml (\(response.body.count) bytes) is not docs/openapi.yaml (\(file.count) bytes)")
    }

    @Test func theRouteReaderFindsPathsAndMethodsAndRefusesWhatItCannotRead() throws {
        let text = """
            openapi: 3.1.0
            paths:
              /a/{id}:
                parameters: []
                get:
                  responses: {}
                post:
                  responses: {}
              /b:
                delete:
                  responses: {}
            components:
              schemas: {}
            """
        #expect(
            try Self.routes(inOpenAPI: text) == [
                Route(method: "GET", path: "/a/{id}"), Route(method: "POST", path: "/a/{id}"),
                Route(method: "DELETE", path: "/b"),
            ])
        #expect(throws: DocumentError.self) { try Self.routes(inOpenAPI: "paths: {/a: {get: {}}}\n") }
        #expect(throws: DocumentError.self) { try Self.routes(inOpenAPI: "paths:\n  \"/a\":\n    get: {}\n") }
        #expect(throws: DocumentError.self) { try Self.routes(inOpenAPI: "paths:\n  /a:\n    fetch: {}\n") }
        #expect(throws: DocumentError.self) {
            try Self.routes(inOpenAPI: "paths:\n  /a:\n    get: {}\n  /a:\n    post: {}\n")
        }
    }

    // MARK: Helpers

    /// Every route the frontend of a service built with `environment` serves; HEAD is left out
    /// (the router answers it from GET; the document does not list it).
    static func servedRoutes(environment extra: [String: String]) async throws -> Set<Route> {
        let sqlitePath = temporarySQLitePath()
        defer { removeTemporarySQLite(sqlitePath) }
        let loop = EventLoop(name: "openapi-routes")
        defer { loop.stop() }
        var environment = ["CHAT_SQLITE_PATH": sqlitePath, "GRPC_ENABLED": "false"]
        environment.merge(extra) { $1 }
        let application = try await buildServices(
            configuration: try ServiceConfiguration(environment: environment), loop: loop,
            metrics: PrometheusCollectorRegistry(), logger: Logger(label: "test.openapi"))
        let table = await application.frontend.routeTable()
        return Set(table.map { Route(method: $0.method.rawValue, path: $0.pattern) })
    }

    static func documentedRoutes() throws -> Set<Route> {
        let routes = try routes(inOpenAPI: String(contentsOfFile: documentPath, encoding: .utf8))
        #expect(Set(routes).count == routes.count, "a route listed twice")
        return Set(routes)
    }

    struct DocumentError: Error, CustomStringConvertible {
        var description: String
    }

    static let operationKeys: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
    static let pathItemKeys: Set<String> = ["summary", "description", "parameters", "servers", "$ref"]

    /// The operations under `paths:` of an OpenAPI document, in order: a line reader, not a YAML
    /// parser, for the one layout docs/openapi.yaml keeps (its header says so). `paths:` at the
    /// top level, each path key two spaces in (`  /v1/chats/{chat_id}:`), each of its keys four
    /// spaces in. Anything else in that region at those depths (flow style, a quoted key, an
    /// unknown key, a path twice) throws instead of being skipped, so the reader cannot miss a
    /// route silently; deeper lines are not its business. The whole document goes through a real
    /// YAML parser in `make contract`, where schemathesis loads it from the service.
    static func routes(inOpenAPI text: String) throws -> [Route] {
        var routes: [Route] = []
        var seenPaths: Set<String> = []
        var inPaths = false
        var path: String?
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            let content = line.drop { $0 == " " }
            if content.isEmpty || content.hasPrefix("#") { continue }
            let indent = line.count - content.count
            func fail(_ reason: String) -> DocumentError {
                DocumentError(description: "line \(index + 1): \(reason): \(line)")
            }
            if indent == 0 {
                if inPaths { inPaths = false }
                if content.hasPrefix("paths:") {
                    guard content == "paths:" else { throw fail("paths must be a block mapping") }
                    inPaths = true
                }
                continue
            }
            guard inPaths else { continue }
            switch indent {
            case 2:
                guard content.hasPrefix("/"), content.hasSuffix(":"), !content.contains(" ") else {
                    throw fail("a path key must be an unquoted /path ending in ':'")
                }
                let key = String(content.dropLast())
                guard seenPaths.insert(key).inserted else { throw fail("the path is listed twice") }
                path = key
            case 4:
                guard let path else { throw fail("a key outside any path") }
                guard let colon = content.firstIndex(of: ":") else { throw fail("not a key") }
                let key = String(content[..<colon])
                if operationKeys.contains(key) {
                    routes.append(Route(method: key.uppercased(), path: path))
                } else if !pathItemKeys.contains(key) {
                    throw fail("not a method or a path item key")
                }
            case 1, 3:
                throw fail("indentation is two spaces a level")
            default:
                continue
            }
        }
        return routes
    }
}
