/// One member of a chat, as cached and served.
public struct Participant: Codable, Sendable, Hashable {
    /// The user's identifier (`user_id`).
    public var userID: String
    /// The name shown in the chat (`display_name`).
    public var displayName: String
    /// The avatar's URL (`avatar_url`); upstream sends `null` or omits it for users without one.
    public var avatarURL: String?
    /// The member's role in the chat (`role`), e.g. `owner` or `member`; passed through unchecked.
    public var role: String

    public init(userID: String, displayName: String, avatarURL: String?, role: String) {
        self.userID = userID
        self.displayName = displayName
        self.avatarURL = avatarURL
        self.role = role
    }

    enum CodingKeys: String, CodingKey {
        case userID = "user_id"
        case displayName = "display_name"
        case avatarURL = "avatar_url"
        case role
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        userID = try container.decode(String.self, forKey: .userID)
        displayName = try container.decode(String.self, forKey: .displayName)
        avatarURL = try container.decodeIfPresent(String.self, forKey: .avatarURL)
        role = try container.decode(String.self, forKey: .role)
    }

    /// Writes `avatar_url` as `null` rather than omitting it, matching the hand-written codec.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(userID, forKey: .userID)
        try container.encode(displayName, forKey: .displayName)
        try container.encode(avatarURL, forKey: .avatarURL)
        try container.encode(role, forKey: .role)
    }
}
