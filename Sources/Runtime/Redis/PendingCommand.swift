/// A command sent on a ``RedisConnection`` whose reply has not arrived yet.
struct PendingCommand {
    /// When the connection gives up on the server; commands are queued in deadline order.
    let deadline: ContinuousClock.Instant
    let waiter: ReplyWaiter
}

/// Who gets a reply: one caller of `send`, or one slot of a pipeline.
enum ReplyWaiter {
    case single(CheckedContinuation<Result<RESPValue, RedisError>, Never>)
    case pipeline(PipelineReplies)

    func deliver(_ value: RESPValue) {
        switch self {
        case .single(let continuation): continuation.resume(returning: .success(value))
        case .pipeline(let replies): replies.append(value)
        }
    }

    func fail(_ error: RedisError) {
        switch self {
        case .single(let continuation): continuation.resume(returning: .failure(error))
        case .pipeline(let replies): replies.fail(error)
        }
    }
}

/// Collects the replies of one pipeline, in order, and resumes its caller once: with all the
/// replies, or with the first connection-level failure (later slots are then ignored).
final class PipelineReplies {
    private var replies: [RESPValue] = []
    private let expected: Int
    private var continuation: CheckedContinuation<Result<[RESPValue], RedisError>, Never>?

    init(expected: Int, continuation: CheckedContinuation<Result<[RESPValue], RedisError>, Never>) {
        self.expected = expected
        self.continuation = continuation
        replies.reserveCapacity(expected)
    }

    func append(_ value: RESPValue) {
        guard let continuation else { return }
        replies.append(value)
        if replies.count == expected {
            self.continuation = nil
            continuation.resume(returning: .success(replies))
        }
    }

    func fail(_ error: RedisError) {
        guard let continuation else { return }
        self.continuation = nil
        continuation.resume(returning: .failure(error))
    }
}
