/// Something bytes can be appended to: a growing `[UInt8]`, or a ``ByteArrayWriter``. Lets a
/// formatter (timestamps, integers) write into either without an intermediate array.
public protocol ByteSink: ~Copyable {
    mutating func append(_ byte: UInt8)
}

extension Array: ByteSink where Element == UInt8 {}

/// Writes a byte array whose size the caller computed up front, with one bounds check per
/// write instead of the uniqueness and growth checks of every `Array.append`: for encoders on
/// hot paths (a participants entry is about 500 appends). Writing past the capacity traps.
///
/// Only ``makeArray(capacity:_:)`` creates one, and only lends it to its closure: the writer is
/// not copyable, so its pointer into the array cannot outlive the array's initialization.
public struct ByteArrayWriter: ~Copyable, ByteSink {
    private let start: UnsafeMutablePointer<UInt8>
    private let end: UnsafeMutablePointer<UInt8>
    private var cursor: UnsafeMutablePointer<UInt8>

    private init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        // An empty buffer may have no base address; a dangling but unused pointer is fine then.
        let base = buffer.baseAddress ?? UnsafeMutablePointer(bitPattern: 1)!
        start = base
        end = base + buffer.count
        cursor = base
    }

    /// An array of at most `capacity` bytes holding exactly what `body` wrote.
    public static func makeArray(capacity: Int, _ body: (inout ByteArrayWriter) -> Void) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            var writer = ByteArrayWriter(buffer)
            body(&writer)
            count = writer.count
        }
    }

    /// As ``makeArray(capacity:_:)``, for a `body` that can fail (a decompressor's output): what
    /// it throws is thrown, and no array is made.
    public static func makeArray<Failure: Error>(
        capacity: Int, _ body: (inout ByteArrayWriter) throws(Failure) -> Void
    ) throws(Failure) -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, count) throws(Failure) in
            var writer = ByteArrayWriter(buffer)
            try body(&writer)
            count = writer.count
        }
    }

    /// Bytes written so far.
    public var count: Int { cursor - start }

    /// Bytes that may still be written.
    public var remainingCapacity: Int { end - cursor }

    @inline(__always)
    private mutating func reserve(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        precondition(count <= end - cursor, "ByteArrayWriter: writing past the capacity")
        let destination = cursor
        cursor += count
        return destination
    }

    @inline(__always)
    public mutating func append(_ byte: UInt8) {
        reserve(1).initialize(to: byte)
    }

    /// Appends the UTF-8 of `text`, a literal.
    @inline(__always)
    public mutating func append(_ text: StaticString) {
        let count = text.utf8CodeUnitCount
        reserve(count).initialize(from: text.utf8Start, count: count)
    }

    /// Appends `bytes`.
    @inline(__always)
    public mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        reserve(bytes.count).initialize(from: source, count: bytes.count)
    }

    /// Appends `bytes`.
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    /// Takes back the last `count` bytes written, so that others are written in their place.
    public mutating func removeLast(_ count: Int = 1) {
        precondition(count >= 0 && count <= self.count, "ByteArrayWriter: removing more than was written")
        cursor -= count
    }

    /// Lends `body` the next `count` bytes to write in place (a decompressor's output); it returns
    /// how many of them it initialized, which are then written. When `body` throws, nothing is.
    mutating func appendInPlace<Failure: Error>(
        upTo count: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) throws(Failure) -> Int
    ) throws(Failure) {
        precondition(count >= 0 && count <= end - cursor, "ByteArrayWriter: writing past the capacity")
        let written = try body(UnsafeMutableBufferPointer(start: cursor, count: count))
        precondition(written >= 0 && written <= count, "ByteArrayWriter: a writer in place overran its bytes")
        cursor += written
    }

    /// Appends the UTF-8 of `text`.
    public mutating func append(utf8 text: String) {
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { append($0) }
        if copied == nil {
            for byte in text.utf8 { append(byte) }
        }
    }
}
