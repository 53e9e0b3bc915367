import ServiceLifecycle

/// Several services run as one, so that graceful shutdown reaches them at the same moment and
/// their drains overlap.
///
/// A `ServiceGroup` shuts its services down one after another in reverse start order, each
/// waiting for the one before. For the HTTP frontend and the scheduler that would keep the
/// scheduler producing batches during the whole HTTP drain and then give its batches in hand
/// only what is left of SHUTDOWN_TIMEOUT, or nothing (the group cancels everything at the bound,
/// Redis included, while batches are still being written). Here both see the signal at once:
/// the children of this service's task group inherit the group's graceful-shutdown manager.
///
/// A child that ends before graceful shutdown began (it failed) ends the others: its error, or
/// the early end, reaches the group as if the service had run on its own.
struct DrainingTogether: Service, CustomStringConvertible {
    let services: [any Service]

    init(_ services: [any Service]) {
        self.services = services
    }

    var description: String {
        "DrainingTogether(\(services.map { String(describing: type(of: $0)) }.joined(separator: ", ")))"
    }

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in services {
                group.addTask { try await service.run() }
            }
            for try await _ in group where !Task.isShuttingDownGracefully {
                group.cancelAll()
                return
            }
        }
    }
}

/// How SHUTDOWN_TIMEOUT is spent after SIGTERM: in-flight HTTP requests and the scheduler's
/// batches in hand drain together within ``drain``; closing the cache and Redis takes the rest.
/// The service group's own bound (the whole timeout) only acts when something ignores its share.
struct ShutdownBudget: Sendable, Hashable {
    let total: Duration

    /// Four fifths of the total: 8 s of the default 10 s.
    var drain: Duration { total * 4 / 5 }
}
