public import Actors
import Logging
import PostgresChatStore
import SQLiteChatStore
import ServiceLifecycle

/// The chat API's parts (issue 8).
public struct ChatComponents: Sendable {
    public let core: ChatCore
    public let store: any ChatStore
    /// Closes the store at the end of shutdown (after the HTTP frontend has drained).
    let closer: StoreCloser
}

/// Opens the configured store (migrations included) and builds the chat core over it and the
/// participants layer (when on).
func buildChat(
    configuration: ServiceConfiguration, participants: ParticipantsComponents?, logger: Logger
) async throws -> ChatComponents {
    let settings = configuration.chat
    let store: any ChatStore
    let close: @Sendable () async -> Void
    switch settings.store {
    case .sqlite(let path):
        store = try await SQLiteChatStore.open(path: path, busyTimeout: settings.storeTimeout, logger: logger)
        // GRDB closes the file when the pool is released.
        close = {}
    case .postgres(let url):
        let postgres = try await PostgresChatStore.open(url: url, timeout: settings.storeTimeout, logger: logger)
        store = postgres
        close = { await postgres.close() }
    }
    var coreSettings = ChatCore.Settings()
    coreSettings.messageMaxBytes = settings.messageMaxBytes
    let source: any ChatParticipantsSource =
        participants.map {
            ParticipantsLayerSource(reader: $0.reader, timeout: settings.participantsTimeout)
        } ?? NoParticipants()
    return ChatComponents(
        core: ChatCore(store: store, participants: source, settings: coreSettings),
        store: store, closer: StoreCloser(close: close))
}

/// A service that does nothing until graceful shutdown, then closes the store. First in the
/// group, so it stops last, once nothing serves requests any more.
struct StoreCloser: Service {
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
