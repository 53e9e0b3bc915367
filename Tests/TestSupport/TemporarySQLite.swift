import Foundation

/// A path for a SQLite chat store in a fresh temporary directory, so services started by tests
/// never write `./chat-service.sqlite3` (the default) into the working directory.
/// ``removeTemporarySQLite(_:)`` deletes the directory.
public func temporarySQLitePath() -> String {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory())
        .appendingPathComponent("chat-sqlite-\(UUID().uuidString.prefix(12))")
    return directory.appendingPathComponent("chat.sqlite3").path
}

/// Removes the directory of a path from ``temporarySQLitePath()`` (the file and its WAL files).
public func removeTemporarySQLite(_ path: String) {
    try? FileManager.default.removeItem(at: URL(fileURLWithPath: path).deletingLastPathComponent())
}
