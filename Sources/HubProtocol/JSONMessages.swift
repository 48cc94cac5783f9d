import NIOCore

/// JSON mode (Durable Streams §6): validates a body and splits it into messages, keeping each message's exact bytes.
/// A top-level array is flattened one level (`[[1,2],[3]]` is two messages); any other value is one message.
public enum JSONMessages {
    /// Deepest nesting accepted; bounds the validator's recursion.
    public static let maxDepth = 256

    /// The messages of `body`, as slices sharing its storage.
    /// - Parameter allowEmptyArray: `[]` is an empty stream on PUT but an error on POST.
    public static func flatten(_ body: ByteBuffer, allowEmptyArray: Bool) throws(ProtocolError) -> [ByteBuffer] {
        try flatten(body, allowEmptyArray: allowEmptyArray) { $0 }
    }

    /// The messages of `body` made into `Message`s by `make` (each given its slice), without an array in between.
    public static func flatten<Message>(_ body: ByteBuffer, allowEmptyArray: Bool,
                                        as make: (ByteBuffer) -> Message) throws(ProtocolError) -> [Message] {
        let ranges: [Range<Int>]
        do {
            ranges = try body.withUnsafeReadableBytes { raw throws(ProtocolError) in
                var scanner = Scanner(bytes: raw)
                return try scanner.messages()
            }
        }
        if ranges.isEmpty && !allowEmptyArray { throw .emptyJSONArray }
        return ranges.map { make(body.getSlice(at: body.readerIndex + $0.lowerBound, length: $0.count)!) }
    }

    /// The exact bytes of each member value of a top-level JSON object, by key (keys compared as written, so they must
    /// not use escapes). For clients that re-print values they did not produce, byte for byte.
    public static func members(_ object: ByteBuffer) throws(ProtocolError) -> [String: ByteBuffer] {
        let ranges = try object.withUnsafeReadableBytes { raw throws(ProtocolError) in
            var scanner = Scanner(bytes: raw)
            return try scanner.members()
        }
        var out: [String: ByteBuffer] = [:]
        for (key, value) in ranges {
            let keyBytes = object.getSlice(at: object.readerIndex + key.lowerBound + 1, length: key.count - 2)!
            out[String(buffer: keyBytes)] = object.getSlice(at: object.readerIndex + value.lowerBound, length: value.count)!
        }
        return out
    }

    /// `[m1,m2,...]`: the body of a JSON-mode read.
    public static func array<S: Sequence>(_ messages: S) -> ByteBuffer where S.Element == ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger(UInt8(ascii: "["))
        var first = true
        for m in messages {
            if !first { out.writeInteger(UInt8(ascii: ",")) }
            first = false
            var m = m
            out.writeBuffer(&m)
        }
        out.writeInteger(UInt8(ascii: "]"))
        return out
    }

    /// A strict RFC 8259 scanner over raw bytes. Records the byte ranges of top-level array elements. Validates UTF-8
    /// as it goes: outside strings JSON is ASCII (any other byte is refused where it stands), so only a string's bytes
    /// need the check, and the body is read once instead of twice.
    struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func messages() throws(ProtocolError) -> [Range<Int>] {
            skipSpace()
            guard i < bytes.count else { throw .invalidJSON("empty document") }
            var ranges: [Range<Int>] = []
            if bytes[i] == UInt8(ascii: "[") {
                i += 1
                skipSpace()
                if peek == UInt8(ascii: "]") {
                    i += 1
                } else {
                    while true {
                        skipSpace()
                        let start = i
                        try value(depth: 1)
                        ranges.append(start..<i)
                        skipSpace()
                        guard let c = peek else { throw .invalidJSON("unterminated array") }
                        i += 1
                        if c == UInt8(ascii: "]") { break }
                        guard c == UInt8(ascii: ",") else { throw .invalidJSON("expected , or ] at byte \(i - 1)") }
                    }
                }
            } else {
                let start = i
                try value(depth: 0)
                ranges.append(start..<i)
            }
            skipSpace()
            guard i == bytes.count else { throw .invalidJSON("unexpected data after the value at byte \(i)") }
            return ranges
        }

        /// A whole document that is one object `{"k":v,...}`: the ranges of each key (with its quotes) and value.
        mutating func members() throws(ProtocolError) -> [(Range<Int>, Range<Int>)] {
            skipSpace()
            guard peek == UInt8(ascii: "{") else { throw .invalidJSON("expected an object") }
            let members = try object(depth: 0, collecting: true)
            skipSpace()
            guard i == bytes.count else { throw .invalidJSON("unexpected data after the object at byte \(i)") }
            return members
        }

        /// The object at `i` (which is at its `{`), validated; with `collecting`, its members' key and value ranges
        /// (without, nothing is allocated: a batch's messages are mostly objects).
        mutating func object(depth: Int, collecting: Bool) throws(ProtocolError) -> [(Range<Int>, Range<Int>)] {
            i += 1
            var members: [(Range<Int>, Range<Int>)] = []
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return members }
            while true {
                skipSpace()
                let keyStart = i
                guard peek == UInt8(ascii: "\"") else { throw .invalidJSON("expected a key at byte \(i)") }
                try string()
                let key = keyStart..<i
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw .invalidJSON("expected : at byte \(i)") }
                i += 1
                skipSpace()
                let valueStart = i
                try value(depth: depth + 1)
                if collecting { members.append((key, valueStart..<i)) }
                skipSpace()
                guard let c = peek else { throw .invalidJSON("unterminated object") }
                i += 1
                if c == UInt8(ascii: "}") { return members }
                guard c == UInt8(ascii: ",") else { throw .invalidJSON("expected , or } at byte \(i - 1)") }
            }
        }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
        }

        mutating func value(depth: Int) throws(ProtocolError) {
            guard depth <= JSONMessages.maxDepth else { throw .invalidJSON("nested deeper than \(JSONMessages.maxDepth)") }
            skipSpace()
            guard let c = peek else { throw .invalidJSON("unexpected end") }
            switch c {
            case UInt8(ascii: "{"):
                _ = try object(depth: depth, collecting: false)
            case UInt8(ascii: "["):
                i += 1
                skipSpace()
                if peek == UInt8(ascii: "]") { i += 1; return }
                while true {
                    try value(depth: depth + 1)
                    skipSpace()
                    guard let d = peek else { throw .invalidJSON("unterminated array") }
                    i += 1
                    if d == UInt8(ascii: "]") { return }
                    guard d == UInt8(ascii: ",") else { throw .invalidJSON("expected , or ] at byte \(i - 1)") }
                }
            case UInt8(ascii: "\""):
                try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default:
                try number()
            }
        }

        mutating func literal(_ word: StaticString) throws(ProtocolError) {
            let n = word.utf8CodeUnitCount
            guard i + n <= bytes.count else { throw .invalidJSON("unexpected end") }
            for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw .invalidJSON("invalid literal at byte \(i)") }
            i += n
        }

        mutating func string() throws(ProtocolError) {
            i += 1  // opening quote
            while i < bytes.count {
                skipPlainWords()
                guard i < bytes.count else { break }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i += 1; return }
                if c < 0x20 { throw .invalidJSON("control character in a string at byte \(i)") }
                if c >= 0x80 {
                    try multibyte()
                    continue
                }
                if c == UInt8(ascii: "\\") {
                    i += 1
                    guard let e = peek else { break }
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 1
                    case UInt8(ascii: "u"):
                        guard i + 4 < bytes.count, (1...4).allSatisfy({ Self.isHex(bytes[i + $0]) }) else {
                            throw .invalidJSON("bad \\u escape at byte \(i)")
                        }
                        i += 5
                    default:
                        throw .invalidJSON("bad escape at byte \(i)")
                    }
                    continue
                }
                i += 1
            }
            throw .invalidJSON("unterminated string")
        }

        /// Steps over a string's plain bytes eight at a time, stopping at the word that holds a quote, a backslash, a
        /// control character or a non-ASCII byte (the byte loop takes it from there). Message bodies are mostly such runs.
        mutating func skipPlainWords() {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while i + 8 <= bytes.count {
                let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                // Per byte: "is zero" after xor with a quote or a backslash, "is below 0x20", and the high bit.
                // Each test is exact for "some byte matches" (a borrow only crosses out of a byte that matched).
                let quote = word ^ (ones &* 0x22), backslash = word ^ (ones &* 0x5C)
                let special = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word) | word
                if special & highs != 0 { return }
                i += 8
            }
        }

        /// Steps over the UTF-8 sequence at `i` (its lead byte is 0x80 or above), refusing what RFC 3629 does: stray
        /// continuation bytes, overlong forms, surrogates, code points past U+10FFFF, truncated sequences.
        mutating func multibyte() throws(ProtocolError) {
            let lead = bytes[i]
            let count: Int
            var second: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: count = 2
            case 0xE0: count = 3; second = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: count = 3
            case 0xED: count = 3; second = 0x80...0x9F
            case 0xF0: count = 4; second = 0x90...0xBF
            case 0xF1...0xF3: count = 4
            case 0xF4: count = 4; second = 0x80...0x8F
            default: throw .invalidJSON("not UTF-8 at byte \(i)")
            }
            guard i + count <= bytes.count, second.contains(bytes[i + 1]) else { throw .invalidJSON("not UTF-8 at byte \(i)") }
            for k in 2..<count where bytes[i + k] & 0xC0 != 0x80 { throw .invalidJSON("not UTF-8 at byte \(i)") }
            i += count
        }

        mutating func number() throws(ProtocolError) {
            let start = i
            if peek == UInt8(ascii: "-") { i += 1 }
            guard let first = peek, Self.isDigit(first) else { throw .invalidJSON("unexpected character at byte \(start)") }
            if first == UInt8(ascii: "0") {
                i += 1
            } else {
                while let d = peek, Self.isDigit(d) { i += 1 }
            }
            if peek == UInt8(ascii: ".") {
                i += 1
                guard let d = peek, Self.isDigit(d) else { throw .invalidJSON("bad number at byte \(start)") }
                while let d = peek, Self.isDigit(d) { i += 1 }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard let d = peek, Self.isDigit(d) else { throw .invalidJSON("bad exponent at byte \(start)") }
                while let d = peek, Self.isDigit(d) { i += 1 }
            }
        }

        static func isDigit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) }
        static func isHex(_ c: UInt8) -> Bool { isDigit(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c) }
    }
}
