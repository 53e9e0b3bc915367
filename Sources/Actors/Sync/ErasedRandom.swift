/// A concrete generator around an existential one: `inout some RandomNumberGenerator` parameters
/// cannot take an `any RandomNumberGenerator` directly.
struct ErasedRandom: RandomNumberGenerator, Sendable {
    var base: any RandomNumberGenerator & Sendable

    mutating func next() -> UInt64 {
        base.next()
    }
}
