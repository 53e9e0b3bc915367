import Actors
import ChatRuntime
import Foundation
import Logging
import Metrics
import Prometheus

/// What `chat-service serve` does once the configuration is valid: bootstrap logging and
/// metrics, start the loop, run the services until a signal, stop the loop.
public enum ServeRunner {
    public static func run(configuration: ServiceConfiguration) async throws {
        bootstrapLogging(level: configuration.logLevel, format: configuration.logFormat)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "chat-service")

        logger.info(
            "starting chat-service",
            metadata: [
                "config": .dictionary(
                    Dictionary(
                        uniqueKeysWithValues: configuration.redactedSummary.map {
                            ($0.name, Logger.MetadataValue.string($0.value))
                        }))
            ])
        for warning in configuration.warnings {
            logger.warning("configuration: \(warning)")
        }

        let loop = EventLoop(name: "chat-service-io", resolver: configuration.resolver)
        let application = try await buildServices(
            configuration: configuration, loop: loop, metrics: registry, logger: logger)
        defer { loop.stop() }
        try await application.run(logger: logger)
        logger.info("chat-service stopped")
    }

    static func bootstrapLogging(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                return JSONLogHandler(label: label, level: level)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
