/// Where a served participants list came from; reported as `source` in HTTP responses.
public enum ReadSource: String, Sendable, Hashable, CaseIterable {
    /// Redis.
    case cache
    /// Fetched from the upstream API for this request.
    case upstream
    /// The in-process cache (L1), e.g. while Redis is unavailable.
    case memory
}
