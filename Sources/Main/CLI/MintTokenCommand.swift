import ArgumentParser
import ChatService
import Foundation

/// `chat-service mint-token`: prints an HS256 JWT signed with JWT_SECRET, for demos and tests.
struct MintTokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mint-token",
        abstract: "Print a user JWT (HS256) signed with JWT_SECRET from the environment.")

    @Option(help: "The token's subject (user id).")
    var subject = "demo-user"

    @Option(help: "Validity in seconds.")
    var ttl = 3600

    func run() throws {
        guard let secret = ProcessInfo.processInfo.environment["JWT_SECRET"], !secret.isEmpty else {
            FileHandle.standardError.write(Data("chat-service: JWT_SECRET must be set to mint a token\n".utf8))
            throw ExitCode(ConfigurationError.exitCode)
        }
        print(mintUserToken(subject: subject, secret: secret, validFor: .seconds(ttl)))
    }
}
