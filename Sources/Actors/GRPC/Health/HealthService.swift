import ChatRuntime
public import GRPCCore
import SwiftProtobuf

/// The standard `grpc.health.v1.Health` service (Check, List, Watch), written against the
/// vendored proto/grpc/health/v1/health.proto because grpc-swift-extras, which ships one, is not
/// available to this project.
///
/// Statuses (docs/GRPC.md): `""` (the whole server) is SERVING from the moment the listener is up
/// until graceful shutdown begins; each API service has its own entry, which the wiring keeps up
/// to date (the participants service's follows the Redis supervisor: NOT_SERVING while degraded).
/// On shutdown every entry turns NOT_SERVING and the watch streams end, so that the server's
/// drain is not held up by them.
public final class HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol, Sendable {
    public typealias ServingStatus = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    /// The name of the whole server's entry.
    public static let server = ""

    private struct State {
        var statuses: [String: ServingStatus]
        var watchers: [Int: Watcher] = [:]
        var nextWatcherID = 0
        var shutDown = false
    }

    private struct Watcher {
        var service: String
        var continuation: AsyncStream<ServingStatus>.Continuation
    }

    private let state: AnnotatedMutex<State>

    /// - Parameter services: the API services' names with their initial status; the server's own
    ///   entry starts NOT_SERVING until ``markServing()``.
    public init(services: [String: ServingStatus] = [:]) {
        var statuses = services
        statuses[Self.server] = .notServing
        state = AnnotatedMutex(State(statuses: statuses))
    }

    /// The listener is up: the server's own entry turns SERVING (unless shutting down).
    public func markServing() {
        setStatus(.serving, for: Self.server)
    }

    /// Sets a service's status and tells its watchers when it changed. Ignored after
    /// ``shutDown()``: nothing turns SERVING again in a stopping process.
    public func setStatus(_ status: ServingStatus, for service: String) {
        let notify = state.withLock { state -> [AsyncStream<ServingStatus>.Continuation] in
            guard !state.shutDown, state.statuses[service] != status else { return [] }
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        for continuation in notify { continuation.yield(status) }
    }

    /// Graceful shutdown: every entry NOT_SERVING, then every watch stream ends.
    public func shutDown() {
        let watchers = state.withLock { state -> [Watcher] in
            guard !state.shutDown else { return [] }
            state.shutDown = true
            for service in state.statuses.keys { state.statuses[service] = .notServing }
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        for watcher in watchers {
            watcher.continuation.yield(.notServing)
            watcher.continuation.finish()
        }
    }

    /// A service's current status; nil for a name it does not know.
    public func status(of service: String) -> ServingStatus? {
        state.withLock { $0.statuses[service] }
    }

    // MARK: grpc.health.v1.Health

    public func check(
        request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = status(of: request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \(String(reflecting: request.service))")
        }
        return .with { $0.status = status }
    }

    public func list(
        request: Grpc_Health_V1_HealthListRequest, context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthListResponse {
        let statuses = state.withLock { $0.statuses }
        return .with { response in
            for (service, status) in statuses {
                response.statuses[service] = .with { $0.status = status }
            }
        }
    }

    /// The current status at once (SERVICE_UNKNOWN for an unknown name), then each change; ends
    /// when the client cancels or the server shuts down.
    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        let (stream, id) = subscribe(request.service)
        defer { unsubscribe(id) }
        var last: ServingStatus?
        // An AsyncStream's iteration ends when the task is cancelled (the client went away).
        for await status in stream where status != last {
            try await response.write(.with { $0.status = status })
            last = status
        }
    }

    private func subscribe(_ service: String) -> (AsyncStream<ServingStatus>, Int?) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ServingStatus.self, bufferingPolicy: .bufferingNewest(8))
        let id = state.withLock { state -> Int? in
            continuation.yield(state.statuses[service] ?? .serviceUnknown)
            guard !state.shutDown else { return nil }
            let id = state.nextWatcherID
            state.nextWatcherID += 1
            state.watchers[id] = Watcher(service: service, continuation: continuation)
            return id
        }
        if id == nil { continuation.finish() }
        return (stream, id)
    }

    private func unsubscribe(_ id: Int?) {
        guard let id else { return }
        let watcher = state.withLock { $0.watchers.removeValue(forKey: id) }
        watcher?.continuation.finish()
    }
}
