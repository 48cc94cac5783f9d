import Foundation
import HubTestSupport

/// A WebSocket client on a plain blocking socket with a tiny receive buffer that reads nothing until asked: the
/// stalled subscriber of the slow-consumer test, and the reader of refusals sent right after the upgrade (WSClient
/// can miss the end of a connection that closes while its upgrade is still completing). Frames from the server are
/// never masked, so parsing is simple.
final class RawWebSocket: @unchecked Sendable {
    private let fd: Int32
    /// The server's 101 response head.
    private(set) var responseHead = ""

    /// Connects and completes the upgrade. Blocking socket calls run on a dispatch thread: the hub under test runs
    /// in this process on the same cooperative pool, which a blocked `recv` would starve.
    static func upgrade(port: Int, path: String, headers: [(String, String)] = []) async throws -> RawWebSocket {
        try await offPool { try RawWebSocket(port: port, path: path, headers: headers) }
    }

    /// How a read up to the close frame ended.
    enum End: Equatable { case closeFrame, endOfStream, timedOut }

    /// The text frames up to the close frame, and its code (nil when the connection ended without one, `end` says how).
    func readUntilClose() async -> (texts: [String], code: Int?, end: End) {
        await Self.offPool { self.blockingReadUntilClose() }
    }

    func readCloseCode() async -> Int? { await readUntilClose().code }

    /// Longest a blocking read waits: a server that neither sends nor closes fails the test instead of hanging it.
    private static let readTimeoutSeconds = 60

    private static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    private static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }

    private init(port: Int, path: String, headers: [(String, String)]) throws {
        fd = try connectLoopback(port: port) { fd in
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            var timeout = timeval(tv_sec: RawWebSocket.readTimeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        // Read the 101 response head only.
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !(head.count >= 4 && head.suffix(4) == [13, 10, 13, 10]) {
            let n = recv(fd, &byte, 1, 0)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { throw TestFailure("no upgrade response") }
            head.append(byte)
        }
        responseHead = String(decoding: head, as: UTF8.self)
        guard responseHead.hasPrefix("HTTP/1.1 101") else { throw TestFailure("upgrade refused: \(responseHead)") }
    }

    deinit { close(fd) }

    private func blockingReadUntilClose() -> (texts: [String], code: Int?, end: End) {
        var texts: [String] = []
        var end = End.endOfStream
        func read(_ count: Int) -> [UInt8]? {
            var out = [UInt8](repeating: 0, count: count)
            var got = 0
            while got < count {
                let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
                // A signal (SIGCHLD from another test's child process) interrupts a blocking read: not an end.
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { end = .timedOut }
                guard n > 0 else { return nil }
                got += n
            }
            return out
        }
        while let header = read(2) {
            let opcode = header[0] & 0x0F
            var length = Int(header[1] & 0x7F)
            if length == 126 { guard let ext = read(2) else { break }; length = Int(ext[0]) << 8 | Int(ext[1]) }
            if length == 127 { guard let ext = read(8) else { break }; length = ext.reduce(0) { $0 << 8 | Int($1) } }
            guard let payload = read(length) else { break }
            if opcode == 0x1 { texts.append(String(decoding: payload, as: UTF8.self)) }
            if opcode == 0x8 { return (texts, payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil, .closeFrame) }
        }
        return (texts, nil, end)
    }
}

/// A blocking TCP socket connected to 127.0.0.1:`port` (close-on-exec, so no child process another test spawns
/// keeps it open); `configure` runs before the connect (buffer sizes must be set then).
func connectLoopback(port: Int, configure: (Int32) -> Void = { _ in }) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    configure(fd)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw TestFailure("connect to 127.0.0.1:\(port) failed: errno \(errno)")
    }
    return fd
}
