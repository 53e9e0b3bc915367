import ArgumentParser
import ChatService
import Foundation

/// `chat-service serve`: runs the service, configured by the environment.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the service (the default). Configured by environment variables only.",
        discussion: EnvironmentHelp.text)

    func run() async throws {
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration(environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("chat-service: \(error)\n".utf8))
            throw ExitCode(ConfigurationError.exitCode)
        }
        try await ServeRunner.run(configuration: configuration)
    }
}
