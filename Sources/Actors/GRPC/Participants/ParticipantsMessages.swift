import Actors
import Foundation
import SwiftProtobuf

extension Chat_V1_ChatParticipants {
    /// The wire form of a served entry: the HTTP read route's JSON object field for field.
    init(_ entry: ParticipantsEntry, stale: Bool, source: ReadSource) {
        self.init()
        chatID = entry.chatID.rawValue
        participants = entry.participants.map(Chat_V1_Participant.init)
        version = entry.version
        fetchedAt = Self.milliseconds(entry.fetchedAt)
        self.stale = stale
        self.source = Chat_V1_ParticipantsSource(source)
    }

    /// Whole milliseconds, rounded to the nearest as Redis and the HTTP API carry `fetched_at`
    /// (ISO8601Timestamp): the same entry reads the same whichever way it was served.
    static func milliseconds(_ date: Date) -> Google_Protobuf_Timestamp {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        // Floor division, so instants before 1970 keep 0 <= nanos < 1e9 as the type requires.
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        return Google_Protobuf_Timestamp(seconds: seconds, nanos: Int32(milliseconds - seconds * 1000) * 1_000_000)
    }
}

extension Chat_V1_Participant {
    init(_ participant: Participant) {
        self.init()
        userID = participant.userID
        displayName = participant.displayName
        if let avatar = participant.avatarURL { avatarURL = avatar }
        role = participant.role
    }
}

extension Chat_V1_ParticipantsSource {
    init(_ source: ReadSource) {
        switch source {
        case .cache: self = .cache
        case .upstream: self = .upstream
        case .memory: self = .memory
        }
    }
}
