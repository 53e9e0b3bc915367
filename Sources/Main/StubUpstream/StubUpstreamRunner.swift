import Logging
import ChatRuntime
import ServiceLifecycle
import UnixSignals

/// What `chat-service stub-upstream` does: serve a ``StubUpstream`` on its own event loop
/// until SIGINT or SIGTERM, then shut it down (hanging requests included) and return.
public enum StubUpstreamRunner {
    /// - Throws: ``StubUpstreamOptions/Invalid`` for bad options; a bind failure.
    public static func run(options: StubUpstreamOptions) async throws {
        let (settings, logLevel) = try options.resolved()
        let host = options.host
        let port = options.port
        bootstrapLogging(level: logLevel)
        let logger = Logger(label: "stub-upstream")
        let loop = EventLoop(name: "stub-upstream-io")
        defer { loop.stop() }
        let stub = StubUpstream(settings: settings, loop: loop, logger: logger)
        let service = StubUpstreamService(stub: stub, host: host, port: port)
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(5)
        try await ServiceGroup(configuration: configuration).run()
        logger.info("stub upstream stopped")
    }

    /// Text lines on standard error at `level`, as `chat-service serve` logs with LOG_FORMAT=text.
    private static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// A ``StubUpstream`` as a service: listens when run, shuts down on graceful shutdown.
struct StubUpstreamService: Service {
    let stub: StubUpstream
    let host: String
    let port: Int

    func run() async throws {
        _ = try await stub.start(host: host, port: port)
        try? await gracefulShutdown()
        await stub.shutdown()
    }
}
