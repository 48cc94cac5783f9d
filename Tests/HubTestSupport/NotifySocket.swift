import Foundation

/// A stand-in for systemd's notification socket: a unix datagram socket whose messages (`READY=1`, …) the test reads.
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let (stream, sink) = AsyncStream.makeStream(of: String.self)

    public init(directory: String) throws {
        path = directory + "/notify.sock"
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket: \(errno)") }
        fd = descriptor
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw TestFailure("bind \(path): \(errno)") }
        let sink = self.sink
        Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(descriptor, &buffer, buffer.count, 0)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                sink.yield(String(decoding: buffer[0..<n], as: UTF8.self))
            }
            sink.finish()
        }.start()
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    /// Waits for a message containing `text` (or fails the wait after `limit`), returning every message seen meanwhile.
    public func next(containing text: String, limit: Duration = .seconds(20)) async throws -> [String] {
        try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask { [stream] in
                var seen: [String] = []
                for await message in stream {
                    seen.append(message)
                    if message.contains(text) { return seen }
                }
                throw TestFailure("notify socket closed before \(text); saw \(seen)")
            }
            group.addTask {
                try await Task.sleep(for: limit)
                throw TestFailure("no notification containing \(text) within \(limit)")
            }
            let result = try await group.next()!
            group.cancelAll()
            return result
        }
    }
}
