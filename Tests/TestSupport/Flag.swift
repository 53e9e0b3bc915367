import ChatRuntime

/// A flag one task sets and another polls (with ``eventually(timeout:every:_:)``).
public final class Flag: Sendable {
    private let value = AnnotatedMutex(false)

    public init() {}

    public var isSet: Bool { value.withLock { $0 } }

    public func set() { value.withLock { $0 = true } }
}
