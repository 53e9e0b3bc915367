public import ChatRuntime
public import Foundation

/// An entry as the L1 keeps it: its stored form compressed as an LZ4 block, beside the two
/// fields the cache reads without it (``version``, ``fetchedAt``; the chat is the L1's key).
///
/// A compressed stored form is a fifth of the bytes for the stub's entries and about half for
/// varied names and URLs (docs/PERFORMANCE.md, "Compressed L1"). A fresh hit decompresses it
/// straight into the answer's body (``EntryCodec/encodeResponse(_:stale:source:)``), one
/// allocation as before; the other readers (a stale or expired hit, the gRPC mapping, the chat
/// core) get a ``ParticipantsEntry`` back through ``entry(of:)``. Redis keeps the plain stored
/// form: other instances read it, and `participants:v1:` means exactly those bytes.
public struct CompressedEntry: Sendable {
    /// The entry's ``ParticipantsEntry/version``.
    public let version: Int64
    /// The entry's ``ParticipantsEntry/fetchedAt``.
    public let fetchedAt: Date
    /// ``ParticipantsEntry/stored``, compressed.
    let stored: LZ4Block

    /// Compresses `entry`'s stored form, or takes the block the entry came with.
    public init(_ entry: ParticipantsEntry) {
        self.init(
            version: entry.version, fetchedAt: entry.fetchedAt,
            stored: entry.compressedStored ?? LZ4Block(compressing: entry.stored))
    }

    /// An entry whose block the caller made (tests give it a corrupt one).
    init(version: Int64, fetchedAt: Date, stored: LZ4Block) {
        self.version = version
        self.fetchedAt = fetchedAt
        self.stored = stored
    }

    /// The entry of `chat`, decompressed. Throws only when the block does not decompress (or is
    /// empty), which a block ``init(_:)`` made never is.
    public func entry(of chat: ChatID) throws(LZ4Error) -> ParticipantsEntry {
        let stored = try storedBlock()
        return ParticipantsEntry(
            chatID: chat, version: version, fetchedAt: fetchedAt, stored: try stored.decompressed(),
            compressedStored: stored)
    }

    /// The compressed stored form, checked not to be empty: a stored form never is, so an empty
    /// block is as corrupt as a truncated one.
    func storedBlock() throws(LZ4Error) -> LZ4Block {
        guard stored.count > 0 else { throw LZ4Error(expected: 0) }
        return stored
    }

    /// How many bytes the compressed stored form holds (diagnostics and tests).
    public var compressedCount: Int { stored.compressed.count }
}
