import HubProtocol
import NIOCore
import Testing

@Suite("Wire framing done once per batch")
struct WireFramingTests {
    @Test("an HTTP/1.1 chunk: hex size, CRLF, data, CRLF; never the empty last chunk")
    func httpChunk() {
        #expect(String(buffer: WireFraming.httpChunk(ByteBuffer(string: "data: hi\n\n"))) == "a\r\ndata: hi\n\n\r\n")
        let big = String(repeating: "x", count: 300)
        #expect(String(buffer: WireFraming.httpChunk(ByteBuffer(string: big))) == "12c\r\n\(big)\r\n")
        #expect(WireFraming.httpChunk(ByteBuffer()).readableBytes == 0)
    }

    @Test("WebSocket text frames: FIN + text, unmasked, 7-bit, 16-bit and 64-bit lengths, back to back")
    func webSocketFrames() {
        let small = ByteBuffer(string: "hello")
        let medium = ByteBuffer(repeating: UInt8(ascii: "m"), count: 200)
        let large = ByteBuffer(repeating: UInt8(ascii: "l"), count: 70_000)
        var wire = WireFraming.webSocketTextFrames([small, medium, large])
        #expect(wire.readBytes(length: 2) == [0x81, 0x05])
        #expect(wire.readString(length: 5) == "hello")
        #expect(wire.readBytes(length: 4) == [0x81, 126, 0x00, 0xC8])
        #expect(wire.readBytes(length: 200) == [UInt8](repeating: UInt8(ascii: "m"), count: 200))
        #expect(wire.readBytes(length: 10) == [0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70])
        #expect(wire.readBytes(length: 70_000) == [UInt8](repeating: UInt8(ascii: "l"), count: 70_000))
        #expect(wire.readableBytes == 0)
        // 125 is the last 7-bit length, 65535 the last 16-bit one.
        #expect(WireFraming.webSocketTextFrames([ByteBuffer(repeating: 0x61, count: 125)]).getBytes(at: 0, length: 2) == [0x81, 125])
        #expect(WireFraming.webSocketTextFrames([ByteBuffer(repeating: 0x61, count: 65_535)]).getBytes(at: 0, length: 4) == [0x81, 126, 0xFF, 0xFF])
        #expect(WireFraming.webSocketTextFrames([]).readableBytes == 0)
    }
}
