public import Actors

/// The stub upstream's synthetic chats: deterministic, computed on demand, so a million chats
/// cost only the versions that were bumped.
///
/// - Chats `chat-1` ... `chat-N` (``chatCount``).
/// - Participant `j` (0-based) of chat `i`: `user_id` `u-<i>-<j>`, `display_name`
///   `User <j> of chat <i> (v<version>)`, `avatar_url` `https://avatars.invalid/u-<i>-<j>.png`
///   except every 7th participant (`j % 7 == 6`), who has `null`; `role` `owner` for `j == 0`,
///   `admin` for `j % 10 == 1`, `member` otherwise.
/// - Every chat starts at version 1; ``bump(_:)`` adds one, which changes its display names.
/// - Chat listing pages in id-number order; the page token is the number of the first chat of
///   the next page, as decimal text.
public struct StubDataset: Sendable {
    /// Chats in the dataset.
    public let chatCount: Int
    /// Participants in every chat.
    public let participantsPerChat: Int
    /// Versions above 1, by chat number; sparse because bumps are rare.
    private var bumpedVersions: [Int: Int64] = [:]

    /// - Precondition: `chatCount >= 0`, `participantsPerChat >= 0`.
    public init(chatCount: Int, participantsPerChat: Int) {
        precondition(chatCount >= 0 && participantsPerChat >= 0, "StubDataset sizes must not be negative")
        self.chatCount = chatCount
        self.participantsPerChat = participantsPerChat
    }

    /// The id of chat number `number` (1-based): `chat-<number>`.
    public static func chatID(_ number: Int) -> String { "chat-\(number)" }

    /// The number of a chat in the dataset, or nil for any other id (`chat-0`, `chat-01`, `x`).
    public func chatNumber(of id: String) -> Int? {
        guard let number = Self.parseNumber(id), number <= chatCount else { return nil }
        return number
    }

    /// The number of any `chat-<n>` id with n >= 1 (no sign, no leading zero), in range or not.
    static func parseNumber(_ id: String) -> Int? {
        let utf8 = id.utf8
        let prefix = "chat-".utf8
        guard utf8.count > prefix.count, utf8.count <= prefix.count + 18, utf8.starts(with: prefix) else { return nil }
        var number = 0
        for (offset, byte) in utf8.dropFirst(prefix.count).enumerated() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), !(offset == 0 && byte == UInt8(ascii: "0")) else { return nil }
            number = number * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return number
    }

    /// The current version of chat `number`.
    public func version(of number: Int) -> Int64 {
        bumpedVersions[number] ?? 1
    }

    /// Adds one to the version of chat `number`; returns the new version.
    @discardableResult
    public mutating func bump(_ number: Int) -> Int64 {
        precondition((1...chatCount).contains(number), "no chat number \(number)")
        let next = version(of: number) + 1
        bumpedVersions[number] = next
        return next
    }

    /// Chat `number` as the participants API returns it.
    public func chat(_ number: Int) -> UpstreamChat {
        let version = version(of: number)
        let participants = (0..<participantsPerChat).map { j in
            Participant(
                userID: Self.userID(chat: number, participant: j),
                displayName: Self.displayName(chat: number, participant: j, version: version),
                avatarURL: Self.avatarURL(chat: number, participant: j),
                role: Self.role(participant: j))
        }
        guard let id = ChatID(validating: Self.chatID(number)) else { preconditionFailure("chat-<n> is always a valid ChatID") }
        return UpstreamChat(chatID: id, participants: participants, version: version)
    }

    /// Writes chat `number` as the contract's JSON object, straight into `writer`: no
    /// intermediate strings, the stub's hot path when it serves a million chats. Every generated
    /// string is plain ASCII without quotes or backslashes, so digits go in unescaped.
    public func writeChat(_ number: Int, into writer: inout JSONWriter) {
        let version = version(of: number)
        let chat = Int64(number)
        writer.appendRaw(#"{"chat_id":"chat-"#)
        writer.appendInteger(chat)
        writer.appendRaw(#"","participants":["#)
        for j in 0..<participantsPerChat {
            let participant = Int64(j)
            if j > 0 { writer.appendRaw(ascii: UInt8(ascii: ",")) }
            writer.appendRaw(#"{"user_id":"u-"#)
            writer.appendInteger(chat)
            writer.appendRaw(ascii: UInt8(ascii: "-"))
            writer.appendInteger(participant)
            writer.appendRaw(#"","display_name":"User "#)
            writer.appendInteger(participant)
            writer.appendRaw(" of chat ")
            writer.appendInteger(chat)
            writer.appendRaw(" (v")
            writer.appendInteger(version)
            if j % 7 == 6 {
                writer.appendRaw(#")","avatar_url":null,"role":"#)
            } else {
                writer.appendRaw(#")","avatar_url":"https://avatars.invalid/u-"#)
                writer.appendInteger(chat)
                writer.appendRaw(ascii: UInt8(ascii: "-"))
                writer.appendInteger(participant)
                writer.appendRaw(#".png","role":"#)
            }
            if j == 0 {
                writer.appendRaw(#""owner"}"#)
            } else if j % 10 == 1 {
                writer.appendRaw(#""admin"}"#)
            } else {
                writer.appendRaw(#""member"}"#)
            }
        }
        writer.appendRaw(#"],"version":"#)
        writer.appendInteger(version)
        writer.appendRaw(ascii: UInt8(ascii: "}"))
    }

    /// One page of chat ids: up to `size` of them from `token` (nil: the first page), and the
    /// next page's token (nil after the last page). Nil for a token this dataset never issued.
    public func page(size: Int, token: String?) -> (chatIDs: [String], nextPageToken: String?)? {
        precondition(size >= 1, "a page holds at least one chat")
        let first: Int
        if let token {
            guard let number = Int(token), number >= 1, number <= chatCount + 1, String(number) == token else { return nil }
            first = number
        } else {
            first = 1
        }
        let last = min(chatCount, first + size - 1)
        let ids = first <= last ? (first...last).map(Self.chatID) : []
        let next = last < chatCount ? String(last + 1) : nil
        return (ids, next)
    }

    static func userID(chat: Int, participant: Int) -> String { "u-\(chat)-\(participant)" }

    static func displayName(chat: Int, participant: Int, version: Int64) -> String {
        "User \(participant) of chat \(chat) (v\(version))"
    }

    static func avatarURL(chat: Int, participant: Int) -> String? {
        participant % 7 == 6 ? nil : "https://avatars.invalid/u-\(chat)-\(participant).png"
    }

    static func role(participant: Int) -> String {
        if participant == 0 { return "owner" }
        return participant % 10 == 1 ? "admin" : "member"
    }
}
