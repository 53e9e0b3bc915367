/// C strings C APIs wrote into a buffer of ours.
enum CString {
    /// The text of `buffer` up to its first NUL (all of it without one), as UTF-8.
    static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
