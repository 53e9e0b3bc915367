import CLZ4

/// Bytes compressed as one LZ4 block (liblz4's block format: no frame, no checksum), with the
/// length they decompress to. For copies a process keeps in memory and reads back itself, where
/// a block costs a fraction of the bytes and decompresses at memory speed; not a format to
/// store or send, since nothing in it says what it is.
///
/// Decompressing checks its input: bytes that are not a block of exactly ``count`` bytes give
/// ``LZ4Error``, never a read or write outside the buffers.
public struct LZ4Block: Sendable, Hashable {
    /// The compressed bytes; empty for empty input.
    public let compressed: [UInt8]
    /// How many bytes the block decompresses to.
    public let count: Int

    /// Compresses `bytes` (LZ4's default, fastest level). The block is held in an array of its
    /// own size, not of the worst case.
    public init(compressing bytes: [UInt8]) {
        precondition(bytes.count <= Int(LZ4_MAX_INPUT_SIZE), "LZ4Block: \(bytes.count) bytes is more than LZ4 takes")
        count = bytes.count
        guard !bytes.isEmpty else {
            compressed = []
            return
        }
        let bound = Int(LZ4_compressBound(Int32(bytes.count)))
        let scratch = [UInt8](unsafeUninitializedCapacity: bound) { output, written in
            written = bytes.withUnsafeBufferPointer { input in
                input.withMemoryRebound(to: CChar.self) { source in
                    output.withMemoryRebound(to: CChar.self) { destination in
                        Int(
                            LZ4_compress_default(
                                source.baseAddress, destination.baseAddress, Int32(source.count),
                                Int32(destination.count)))
                    }
                }
            }
        }
        // Cannot fail: the output has the worst case's room (LZ4_compressBound).
        precondition(!scratch.isEmpty, "LZ4Block: compression failed")
        // Copied into an array of its own size (`Array(scratch)` would keep the worst case's).
        compressed = [UInt8](unsafeUninitializedCapacity: scratch.count) { output, written in
            written = output.initialize(fromContentsOf: scratch)
        }
    }

    /// A block made elsewhere (by ``init(compressing:)``, kept as its parts); checked only when
    /// decompressed.
    public init(compressed: [UInt8], count: Int) {
        precondition(count >= 0, "LZ4Block: a negative length")
        self.compressed = compressed
        self.count = count
    }

    /// The bytes the block holds.
    public func decompressed() throws(LZ4Error) -> [UInt8] {
        try ByteArrayWriter.makeArray(capacity: count) { writer throws(LZ4Error) in
            try writer.append(decompressing: self)
        }
    }

    /// Decompresses into `output`, which must have room for exactly ``count`` bytes. Returns
    /// ``count``; throws when the block is not a valid block of that length.
    fileprivate func decompress(into output: UnsafeMutableBufferPointer<UInt8>) throws(LZ4Error) -> Int {
        guard !compressed.isEmpty else {
            if count == 0 { return 0 }
            throw LZ4Error(expected: count)
        }
        guard compressed.count <= Int(Int32.max), count <= Int(LZ4_MAX_INPUT_SIZE) else {
            throw LZ4Error(expected: count)
        }
        let decoded = compressed.withUnsafeBufferPointer { input in
            input.withMemoryRebound(to: CChar.self) { source in
                output.withMemoryRebound(to: CChar.self) { destination in
                    LZ4_decompress_safe(
                        source.baseAddress, destination.baseAddress, Int32(source.count), Int32(destination.count))
                }
            }
        }
        guard decoded == count else { throw LZ4Error(expected: count) }
        return count
    }
}

/// A block that is not a valid LZ4 block of the length it was said to have: corrupt,
/// truncated, or of another length.
public struct LZ4Error: Error, Hashable, CustomStringConvertible {
    /// The length the block should have decompressed to.
    public let expected: Int

    public init(expected: Int) {
        self.expected = expected
    }

    public var description: String {
        "not an LZ4 block of \(expected) bytes"
    }
}

extension ByteArrayWriter {
    /// Appends the bytes `block` holds, decompressed straight into the array being written.
    /// When the block is invalid, throws and writes nothing.
    public mutating func append(decompressing block: LZ4Block) throws(LZ4Error) {
        try appendInPlace(upTo: block.count) { output throws(LZ4Error) in
            try block.decompress(into: output)
        }
    }
}
