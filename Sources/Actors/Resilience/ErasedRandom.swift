/// A concrete generator around an existential one: `inout some RandomNumberGenerator` parameters
/// cannot take a stored `any RandomNumberGenerator` directly.
struct ErasedRandom: RandomNumberGenerator, Sendable {
    var base: any RandomNumberGenerator & Sendable

    init(_ base: any RandomNumberGenerator & Sendable) {
        self.base = base
    }

    init(base: any RandomNumberGenerator & Sendable) {
        self.base = base
    }

    mutating func next() -> UInt64 {
        base.next()
    }
}
