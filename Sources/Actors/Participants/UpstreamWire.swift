/// One chat as the upstream participants API returns it (DESIGN §5), from
/// `GET /v1/chats/{chat_id}/participants` or inside a batch answer.
///
/// The members are kept as the compact JSON array of the stored entry form
/// (``participantsJSON``), which the upstream parser writes while it checks the answer, so that
/// a fetched chat becomes a ``ParticipantsEntry`` without decoding a member.
public struct UpstreamChat: Codable, Sendable, Hashable {
    /// The chat (`chat_id`); a chat whose id is not a valid ``ChatID`` is refused.
    public let chatID: ChatID
    /// Upstream's version of the list (`version`), a JSON integer.
    public let version: Int64
    /// The members (`participants`) as ``EntryCodec`` writes them in the stored form.
    public let participantsJSON: [UInt8]

    public init(chatID: ChatID, participants: [Participant], version: Int64) {
        self.init(chatID: chatID, participantsJSON: EntryCodec.participantsJSON(participants), version: version)
    }

    /// A chat whose members the caller already wrote in the stored form.
    init(chatID: ChatID, participantsJSON: [UInt8], version: Int64) {
        self.chatID = chatID
        self.version = version
        self.participantsJSON = participantsJSON
    }

    /// The members, decoded from ``participantsJSON`` on each call.
    public var participants: [Participant] {
        do {
            return try EntryParser.participants(inArray: participantsJSON)
        } catch {
            // Unreachable: `participantsJSON` is only ever written by EntryCodec or the parser.
            assertionFailure("stored participants did not decode: \(error)")
            return []
        }
    }

    enum CodingKeys: String, CodingKey {
        case chatID = "chat_id"
        case participants
        case version
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            chatID: try container.decode(ChatID.self, forKey: .chatID),
            participants: try container.decode([Participant].self, forKey: .participants),
            version: try container.decodeInt64(forKey: .version))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(chatID, forKey: .chatID)
        try container.encode(participants, forKey: .participants)
        try container.encode(version, forKey: .version)
    }
}

/// The body of `POST /v1/participants:batchGet`: `{"chat_ids": [...]}`.
public struct BatchGetRequest: Codable, Sendable, Hashable {
    /// The chats asked for, at most `PARTICIPANTS_BATCH_SIZE` of them.
    public var chatIDs: [ChatID]

    public init(chatIDs: [ChatID]) {
        self.chatIDs = chatIDs
    }

    enum CodingKeys: String, CodingKey {
        case chatIDs = "chat_ids"
    }
}

/// The answer to `POST /v1/participants:batchGet`: `{"chats": [...], "not_found": [...]}`.
///
/// Each chat is checked on its own: one malformed chat lands in ``rejected`` instead of failing
/// the whole batch, so a single bad record upstream cannot block the refresh of the others. A
/// body whose envelope is wrong (not JSON, `chats` not an array) is refused as a whole.
public struct BatchGetResponse: Codable, Sendable, Hashable {
    /// The well-formed chats.
    public var chats: [UpstreamChat]
    /// Ids upstream does not know (`not_found`); a missing field counts as empty.
    public var notFound: [String]
    /// Elements of `chats` that broke the contract, dropped. Not part of the wire format.
    public var rejected: [UpstreamDecodingError]

    public init(chats: [UpstreamChat], notFound: [String], rejected: [UpstreamDecodingError] = []) {
        self.chats = chats
        self.notFound = notFound
        self.rejected = rejected
    }

    enum CodingKeys: String, CodingKey {
        case chats
        case notFound = "not_found"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let elements = try container.decode([CheckedChat].self, forKey: .chats)
        chats = []
        rejected = []
        for element in elements {
            switch element.result {
            case .success(let chat): chats.append(chat)
            case .failure(let error): rejected.append(error)
            }
        }
        notFound = try container.decodeIfPresent([String].self, forKey: .notFound) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(chats, forKey: .chats)
        try container.encode(notFound, forKey: .notFound)
    }
}

/// Decodes one element of `chats` without letting its failure escape.
private struct CheckedChat: Decodable {
    var result: Result<UpstreamChat, UpstreamDecodingError>

    init(from decoder: any Decoder) throws {
        do {
            result = .success(try UpstreamChat(from: decoder))
        } catch {
            let chatID = try? decoder.container(keyedBy: UpstreamChat.CodingKeys.self)
                .decode(String.self, forKey: .chatID)
            result = .failure(UpstreamDecodingError(DecodingFailure(error), chatID: chatID))
        }
    }
}

/// One page of `GET /v1/chats?page_size=N&page_token=T`: `{"chat_ids": [...], "next_page_token": T|null}`.
public struct ChatListPage: Codable, Sendable, Hashable {
    /// The valid chat ids of this page.
    public var chatIDs: [ChatID]
    /// The token for the next page; `nil` (absent, `null` or `""`) on the last page.
    public var nextPageToken: String?
    /// Strings in `chat_ids` that are not valid ``ChatID``s, dropped so that the full refresh can
    /// go on. Not part of the wire format. A non-string element still fails the whole page.
    public var rejectedIDs: [String]

    public init(chatIDs: [ChatID], nextPageToken: String?, rejectedIDs: [String] = []) {
        self.chatIDs = chatIDs
        self.nextPageToken = nextPageToken
        self.rejectedIDs = rejectedIDs
    }

    enum CodingKeys: String, CodingKey {
        case chatIDs = "chat_ids"
        case nextPageToken = "next_page_token"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        chatIDs = []
        rejectedIDs = []
        for text in try container.decode([String].self, forKey: .chatIDs) {
            if let id = ChatID(validating: text) {
                chatIDs.append(id)
            } else {
                rejectedIDs.append(text)
            }
        }
        let token = try container.decodeIfPresent(String.self, forKey: .nextPageToken)
        nextPageToken = token?.isEmpty == true ? nil : token
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(chatIDs, forKey: .chatIDs)
        try container.encode(nextPageToken, forKey: .nextPageToken)
    }
}
