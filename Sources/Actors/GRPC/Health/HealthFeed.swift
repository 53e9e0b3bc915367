public import Actors

/// Keeps one health entry up to date while the server runs; ``GRPCFrontend`` runs each feed as a
/// child task and cancels it when the server stops.
public struct HealthFeed: Sendable {
    let follow: @Sendable (HealthService) async -> Void

    public init(_ follow: @escaping @Sendable (HealthService) async -> Void) {
        self.follow = follow
    }

    /// `service` is SERVING while the supervisor is `ready` and NOT_SERVING otherwise: the
    /// service still answers then (from memory and upstream) but is degraded, as `/health` says.
    public static func redis(_ supervisor: RedisSupervisor, service: String) -> HealthFeed {
        HealthFeed { health in
            // The stream starts with the current state and ends when the supervisor stops or
            // this task is cancelled.
            for await change in await supervisor.stateChanges() {
                health.setStatus(change.to == .ready ? .serving : .notServing, for: service)
            }
        }
    }
}
