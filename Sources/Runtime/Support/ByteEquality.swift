import Foundation

extension Array where Element == UInt8 {
    /// Whether both arrays hold the same bytes, compared with `memcmp`: `==` compares element
    /// by element, which matters for the kilobytes of a stored entry compared on every read.
    public func hasSameBytes(as other: [UInt8]) -> Bool {
        guard count == other.count else { return false }
        return withUnsafeBytes { lhs in
            other.withUnsafeBytes { rhs in
                guard let left = lhs.baseAddress, let right = rhs.baseAddress else { return true }
                return memcmp(left, right, lhs.count) == 0
            }
        }
    }
}
