public import Actors

/// What the participants RPCs need from the participants layer: the read path, the refresh
/// coordinator (through the reader) and the sync control of the operator routes.
public struct ParticipantsBackend: Sendable {
    public let reader: ParticipantsReader
    public let sync: SyncControl
    /// The most distinct chat ids one BatchGetParticipants call may ask for
    /// (PARTICIPANTS_BATCH_SIZE).
    public let batchLimit: Int

    public init(reader: ParticipantsReader, sync: SyncControl, batchLimit: Int) {
        self.reader = reader
        self.sync = sync
        self.batchLimit = batchLimit
    }
}
