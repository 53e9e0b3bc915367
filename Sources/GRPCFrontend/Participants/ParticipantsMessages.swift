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
        fetchedAt = Google_Protobuf_Timestamp(date: entry.fetchedAt)
        self.stale = stale
        self.source = Chat_V1_ParticipantsSource(source)
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
