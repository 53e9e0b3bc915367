import ArgumentParser
import ChatService

/// `chat-service`: the participants service and its tools.
@main
struct ChatServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-service",
        abstract: "Serves chat participants from a Redis cache kept fresh from the upstream participants API.",
        discussion: EnvironmentHelp.text,
        subcommands: [ServeCommand.self, MintTokenCommand.self, StubUpstreamCommand.self],
        defaultSubcommand: ServeCommand.self)
}
