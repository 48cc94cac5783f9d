import Crypto
import HubCore

/// A bearer token secret: `hub_` + 43 base64url characters (256 random bits). The prefix makes leaked tokens easy
/// to grep for; the fixed length and alphabet are checked before any lookup, so garbage costs no store work.
/// Only the SHA-256 digest is ever stored; lookups are by digest, so no secret is ever compared byte by byte.
public struct BearerToken: Sendable, Hashable {
    public static let prefix = "hub_"
    public static let length = 47

    public let secret: String

    /// Validates the format; nil for anything that cannot be a token.
    public init?(parsing text: some StringProtocol) {
        let utf8 = text.utf8
        guard utf8.count == Self.length, text.hasPrefix(Self.prefix), utf8.dropFirst(4).allSatisfy(Self.isBase64URL) else { return nil }
        secret = String(text)
    }

    /// A fresh token from the system's cryptographic random source.
    public static func generate() -> BearerToken {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return BearerToken(parsing: prefix + Base64URL.encode(random))!
    }

    /// Lowercase hex SHA-256 of the secret: what the store keeps.
    public var digest: String { Self.digest(of: secret) }

    public static func digest(of text: String) -> String {
        var text = text
        let hash = text.withUTF8 { SHA256.hash(data: $0) }
        return String(unsafeUninitializedCapacity: SHA256.byteCount * 2) { buffer in
            var i = 0
            for byte in hash {
                buffer[i] = hexDigits[Int(byte >> 4)]
                buffer[i + 1] = hexDigits[Int(byte & 0x0F)]
                i += 2
            }
            return i
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Parses `Authorization: Bearer <token>` (scheme case-insensitive). nil when the header is not a bearer header.
    public static func fromAuthorization(_ header: String) -> Substring? {
        guard let space = header.firstIndex(of: " ") else { return nil }
        let scheme = header[..<space]
        guard scheme.count == 6, scheme.lowercased() == "bearer" else { return nil }
        let credentials = header[header.index(after: space)...].drop(while: { $0 == " " })
        return credentials.isEmpty ? nil : credentials
    }

    static func isBase64URL(_ b: UInt8) -> Bool {
        (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x2D || b == 0x5F
    }
}

/// Random public identifiers (`tok_…`), shown in listings and logs instead of secrets.
public enum TokenID {
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return "tok_" + Base64URL.encode((0..<9).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}

/// base64url without padding (RFC 4648 §5).
public enum Base64URL {
    fileprivate static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        if bytes.count - i == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if bytes.count - i == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Base64URL {
    /// Decodes unpadded base64url; nil for any other character or an impossible length.
    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            values.append(UInt8(v))
        }
        guard values.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < values.count {
            let chunk = values[i..<min(i + 4, values.count)]
            var n: UInt32 = 0
            for (k, v) in chunk.enumerated() { n |= UInt32(v) << (18 - 6 * UInt32(k)) }
            out.append(UInt8(n >> 16 & 0xFF))
            if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xFF)) }
            if chunk.count > 3 { out.append(UInt8(n & 0xFF)) }
            i += 4
        }
        return out
    }
}

/// Lowercase hexadecimal.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes { out += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]] }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for an odd length or a character outside `0-9a-f`.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = digits.firstIndex(of: chars[i]), let lo = digits.firstIndex(of: chars[i + 1]) else { return nil }
            out.append(UInt8(hi << 4 | lo))
            i += 2
        }
        return out
    }
}
