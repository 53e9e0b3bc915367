import Actors
import Foundation
import SwiftProtobuf

extension Chat_V1_Chat {
    /// The wire form of a chat view: the HTTP API's chat object field for field.
    init(_ view: ChatView) {
        self.init()
        chatID = view.id.rawValue
        hosted = view.hosted != nil
        if let hosted = view.hosted {
            if let title = hosted.title { self.title = title }
            createdBy = hosted.createdBy
            createdAt = Chat_V1_ChatParticipants.milliseconds(hosted.createdAt)
        }
        members = view.members.map(Chat_V1_Member.init)
        participantsAvailable = view.participantsAvailable
    }
}

extension Chat_V1_Member {
    init(_ view: MemberView) {
        self.init()
        userID = view.userID
        if let displayName = view.displayName { self.displayName = displayName }
        if let avatarURL = view.avatarURL { self.avatarURL = avatarURL }
        if let role = view.role { self.role = role }
        switch view.source {
        case .participants: source = .participants
        case .store: source = .store
        case .both: source = .both
        }
    }
}

extension Chat_V1_Message {
    /// The wire form of a message: the HTTP API's message object, with the author's display data
    /// when the participants layer named the author.
    init(_ view: MessageView) {
        self.init()
        let message = view.message
        id = message.id.description
        chatID = message.chatID.rawValue
        authorID = message.authorID
        text = message.text
        createdAt = Chat_V1_ChatParticipants.milliseconds(message.createdAt)
        if let participant = view.author {
            author = .with {
                $0.userID = participant.userID
                $0.displayName = participant.displayName
                if let avatar = participant.avatarURL { $0.avatarURL = avatar }
                $0.role = participant.role
            }
        }
        authorResolved = view.author != nil
    }
}

extension Chat_V1_ListMessagesResponse {
    init(_ page: MessagePage, chat: ChatID) {
        self.init()
        chatID = chat.rawValue
        messages = page.messages.map(Chat_V1_Message.init)
        nextBefore = page.nextBefore?.description ?? ""
        authorsResolved = page.authorsResolved
        participantsAvailable = page.participantsAvailable
    }
}
