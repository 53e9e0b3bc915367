import ChatRuntime
import Foundation

/// User tokens that passed ``TokenVerifier`` recently, with the time window in which they stay
/// acceptable, so a client sending the same token on every request pays one hash lookup instead
/// of a signature check, two base64 decodes and a JSON parse.
///
/// Sound because whether a token is accepted depends only on its bytes and the clock: for one
/// key the signature check always gives the same answer, and the window (`nbf` and `exp`,
/// leeway included) is checked again on every hit, so a token is refused from the very second
/// the verifier would refuse it. One exception, accepted: a token signed by a provider key that
/// the provider has since retired stays accepted until its `exp` (or until it leaves the cache). Refused tokens are never kept, so a wrong token always costs
/// a full check. Keys compare in constant time, so the cache adds no timing signal about the
/// tokens it holds. Bounded: past `capacity` the least recently used token goes.
final class VerifiedTokenCache: Sendable {
    /// Accepted from `notBefore` (inclusive) to `expiresAt` (exclusive), in seconds since 1970,
    /// leeway included; infinite where the token has no such claim.
    struct Window: Sendable, Hashable {
        var notBefore: Double
        var expiresAt: Double
        /// The token's `sub`, so a remembered token names its user without a parse.
        var subject: String?

        init(notBefore: Double = -.infinity, expiresAt: Double = .infinity, subject: String? = nil) {
            self.notBefore = notBefore
            self.expiresAt = expiresAt
            self.subject = subject
        }

        /// The window in which ``TokenVerifier`` accepts a token carrying `claims`.
        init(claims: JWTClaims, leewaySeconds: Double) {
            self.init(
                notBefore: claims.notBefore.map { $0.timeIntervalSince1970 - leewaySeconds } ?? -.infinity,
                expiresAt: claims.expiresAt.map { $0.timeIntervalSince1970 + leewaySeconds } ?? .infinity,
                subject: claims.subject)
        }

        func contains(_ seconds: Double) -> Bool {
            seconds >= notBefore && seconds < expiresAt
        }
    }

    /// The most tokens kept.
    let capacity: Int
    private let tokens: AnnotatedMutex<LRUCache<Key, Window>>

    init(capacity: Int) {
        self.capacity = capacity
        tokens = AnnotatedMutex(LRUCache(capacity: capacity))
    }

    /// The window of `token` if it verified recently; marks it as recently used.
    func window(of token: Substring) -> Window? {
        tokens.withLock { $0.get(Key(token)) }
    }

    /// Keeps `token`, which the verifier has just accepted.
    func remember(_ token: Substring, window: Window) {
        tokens.withLock { _ = $0.set(window, for: Key(token)) }
    }

    var count: Int { tokens.withLock { $0.count } }

    /// A token as a dictionary key whose equality takes the same time wherever two tokens of
    /// one length differ.
    private struct Key: Hashable, Sendable {
        let token: Substring

        init(_ token: Substring) { self.token = token }

        func hash(into hasher: inout Hasher) {
            hasher.combine(token)
        }

        static func == (lhs: Key, rhs: Key) -> Bool {
            let left = lhs.token.utf8
            let right = rhs.token.utf8
            guard left.count == right.count else { return false }
            // On the contiguous bytes (native strings, always here): a plain loop over buffers.
            let compared = left.withContiguousStorageIfAvailable { a in
                right.withContiguousStorageIfAvailable { b in Self.difference(a, b) == 0 }
            }
            if let equal = compared ?? nil { return equal }
            var difference: UInt8 = 0
            for (a, b) in zip(left, right) { difference |= a ^ b }
            return difference == 0
        }

        /// OR of the XORs of all bytes: zero exactly when equal, whatever the position of a
        /// difference. `a` and `b` have the same count.
        private static func difference(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> UInt8 {
            var difference: UInt8 = 0
            for index in 0..<a.count { difference |= a[index] ^ b[index] }
            return difference
        }
    }
}
