import HTTPTypes
import NIOCore

/// HTTP/1.1 on the bytes, for the hot lane (`HotLane`): where the next request on a connection ends, the request
/// itself when the lane may answer it, and response heads written straight into a buffer.
///
/// The scan is deliberately narrow. It accepts only the plain shape busy clients send — a request line, `name: value`
/// header lines, Content-Length framing — and calls anything else `undelimited`, which hands the rest of the
/// connection to NIO's full HTTP/1 decoder (llhttp). So the lane never has to be right about the unusual; it only
/// has to recognise the usual.
enum HTTP1Wire {
    /// Longest request head the lane reads; a longer one is the decoder's (which applies its own limit).
    static let maxHeadBytes = 16 * 1024

    /// What the bytes at a request boundary hold.
    enum Scan: Equatable {
        /// Not a whole head yet.
        case incomplete
        /// A head of `headLength` bytes followed by a body of `contentLength` bytes.
        case request(Head)
        /// Not a shape the lane reads (chunked or `Expect` bodies, upgrades, obsolete folding, anything malformed).
        case undelimited
    }

    struct Head: Equatable {
        let headLength: Int
        let contentLength: Int
        /// The request, for `GET` and `POST` in HTTP/1.1 on a stream path, and `GET /healthz` (what the hot path may
        /// take); nil otherwise.
        let request: HTTPRequest?
    }

    /// Scans the bytes at a request boundary.
    static func scan(_ buffer: ByteBuffer) -> Scan {
        buffer.withUnsafeReadableBytes { scan($0) }
    }

    static func scan(_ bytes: UnsafeRawBufferPointer) -> Scan {
        guard let end = headEnd(bytes) else { return bytes.count >= maxHeadBytes ? .undelimited : .incomplete }
        // The request line: method SP target SP version CRLF.
        guard let lineEnd = find(cr, in: bytes, from: 0, to: end + 1),  // with no fields, its CRLF starts the blank line
              let space1 = find(space, in: bytes, from: 0, to: lineEnd), space1 > 0,
              let space2 = find(space, in: bytes, from: space1 + 1, to: lineEnd), space2 > space1 + 1,
              bytes[0..<space1].allSatisfy(isToken),
              bytes[(space1 + 1)..<space2].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return .undelimited }
        let version = bytes[(space2 + 1)..<lineEnd]
        let isHTTP11 = version.elementsEqual("HTTP/1.1".utf8)
        guard isHTTP11 || version.elementsEqual("HTTP/1.0".utf8) else { return .undelimited }
        let method = bytes[0..<space1], target = bytes[(space1 + 1)..<space2]
        let isGet = method.elementsEqual("GET".utf8)
        let wanted = isHTTP11 && (isGet || method.elementsEqual("POST".utf8))
            && (target.starts(with: StreamsController.prefix.utf8) || (isGet && target.elementsEqual(HotPathRouter.health.utf8)))
        var fields = HTTPFields()
        var authority: String?
        var contentLength: Int?
        var line = lineEnd + 2
        while line < end {
            guard let crlf = find(cr, in: bytes, from: line, to: end + 2), bytes[crlf + 1] == lf,
                  let colon = find(UInt8(ascii: ":"), in: bytes, from: line, to: crlf), colon > line,
                  bytes[line..<colon].allSatisfy(isToken)
            else { return .undelimited }
            var valueStart = colon + 1, valueEnd = crlf
            while valueStart < valueEnd, bytes[valueStart] == space || bytes[valueStart] == tab { valueStart += 1 }
            while valueEnd > valueStart, bytes[valueEnd - 1] == space || bytes[valueEnd - 1] == tab { valueEnd -= 1 }
            guard bytes[valueStart..<valueEnd].allSatisfy(isFieldValueByte) else { return .undelimited }
            let name = bytes[line..<colon], value = bytes[valueStart..<valueEnd]
            switch name.count {
            case 14 where equalsIgnoringCase(name, "content-length"):
                guard contentLength == nil, let length = decimal(value) else { return .undelimited }
                contentLength = length
            case 17 where equalsIgnoringCase(name, "transfer-encoding"), 6 where equalsIgnoringCase(name, "expect"),
                 7 where equalsIgnoringCase(name, "upgrade"):
                return .undelimited
            default:
                break
            }
            if wanted {
                if authority == nil, name.count == 4, equalsIgnoringCase(name, "host") {
                    authority = String(decoding: value, as: UTF8.self)  // as NIO's conversion: the first Host is the authority
                } else if let fieldName = HTTPField.Name(String(decoding: name, as: UTF8.self)) {
                    fields.append(HTTPField(name: fieldName, value: String(decoding: value, as: UTF8.self)))
                }
            }
            line = crlf + 2
        }
        let request = wanted ? HTTPRequest(method: method.count == 3 ? .get : .post, scheme: "http", authority: authority,
                                           path: String(decoding: target, as: UTF8.self), headerFields: fields) : nil
        return .request(Head(headLength: end + 4, contentLength: contentLength ?? 0, request: request))
    }

    /// A response head as NIO's encoder writes it: the status line, each field as `name: value`, then `common` (field
    /// lines encoded beforehand), then the blank line.
    static func writeResponseHead(_ status: HTTPResponse.Status, _ fields: HTTPFields, common: ByteBuffer, into buffer: inout ByteBuffer) {
        writeResponseHeadOpen(status, fields, common: common, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// The head without the blank line that ends it: more field lines may follow.
    static func writeResponseHeadOpen(_ status: HTTPResponse.Status, _ fields: HTTPFields, common: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        writeFields(fields, into: &buffer)
        buffer.writeImmutableBuffer(common)
    }

    /// Field lines: `name: value` CRLF each.
    static func writeFields(_ fields: HTTPFields, into buffer: inout ByteBuffer) {
        for field in fields {
            buffer.writeString(field.name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
    }

    /// The last chunk of a chunked body, with no trailers.
    static let lastChunk = "0\r\n\r\n"

    // MARK: Bytes

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

    /// The index of the CRLFCRLF that ends the head, if it is there.
    private static func headEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let limit = min(bytes.count, maxHeadBytes)
        while i + 3 < limit {
            if bytes[i + 3] != lf { i += 1; continue }  // the most common mismatch first
            if bytes[i] == cr, bytes[i + 1] == lf, bytes[i + 2] == cr { return i }
            i += 1
        }
        return nil
    }

    private static func find(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        var i = from
        while i < to {
            if bytes[i] == byte { return i }
            i += 1
        }
        return nil
    }

    /// RFC 9110 `tchar`.
    private static func isToken(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    /// RFC 9110 `field-value` bytes: visible, space, tab, obs-text.
    private static func isFieldValueByte(_ b: UInt8) -> Bool { b == tab || (b >= 0x20 && b != 0x7F) }

    private static func equalsIgnoringCase(_ bytes: Slice<UnsafeRawBufferPointer>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return zip(bytes, UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)).allSatisfy { $0 | 0x20 == $1 }
    }

    /// A Content-Length value: digits only, at most 15 of them.
    private static func decimal(_ bytes: Slice<UnsafeRawBufferPointer>) -> Int? {
        guard (1...15).contains(bytes.count) else { return nil }
        var value = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(b - UInt8(ascii: "0"))
        }
        return value
    }
}
