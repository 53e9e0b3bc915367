import ChatRuntime
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One PostgreSQL server for the whole test process, started on first use; each test takes a
/// database of its own (``database()``), which keeps tests independent at the cost of one
/// initdb instead of one per test. The server is killed and its directory removed when the
/// process exits (and it dies with the process on a crash: `--pdeathsig`).
public enum SharedPostgresServer {
    private static let state = AnnotatedMutex<Task<PostgresServer, any Error>?>(nil)

    /// The URL of a new, empty database on the shared server.
    public static func database() async throws -> String {
        try await server().createDatabase()
    }

    /// The shared server, started on the first call.
    public static func server() async throws -> PostgresServer {
        let task = state.withLock { current in
            if let current { return current }
            let started = Task {
                let server = try await PostgresServer.start()
                SharedPostgresServer.remember(server)
                return server
            }
            current = started
            atexit { SharedPostgresServer.cleanUpAtExit() }
            return started
        }
        return try await task.value
    }

    /// Set once the server has started, for the exit handler (which cannot await).
    private static let started = AnnotatedMutex<PostgresServer?>(nil)

    private static func cleanUpAtExit() {
        started.withLock { $0?.cleanup() }
    }

    static func remember(_ server: PostgresServer) {
        started.withLock { $0 = server }
    }
}
