import Foundation

/// A free loopback port below the kernel's ephemeral range (32768 and up by default), for a server the test starts
/// itself some time after choosing the port. A port from `freePort()` is an ephemeral one: until the server binds it,
/// any test's outgoing connection or port-0 listener may take it (seen: PostgreSQL failing to start with "Address
/// already in use").
public func freeStablePort() throws -> Int {
    for _ in 0..<200 {
        let port = Int.random(in: 20_000..<32_000)
        if canBind(port) { return port }
    }
    throw TestFailure("cannot find a free port below the ephemeral range")
}

private func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it, close). Only for tools that must be told
/// a port up front (systemd-socket-activate, the TLS listener); everything else binds port 0 and learns it.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs a command to completion and returns (exit status, merged output). A command still running after `limit` is
/// killed and the test fails, so a regression (a hubd that should have refused to start) cannot hang the suite.
public func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                limit: Duration = .seconds(60)) async throws -> (Int32, String) {
    let process = try ChildProcess(executable, arguments, environment: environment)
    let watchdog = Task {
        try await Task.sleep(for: limit)
        process.signal(SIGKILL)
    }
    var lines: [String] = []
    for await line in process.lines() { lines.append(line) }
    let status = await process.wait()
    let timedOut = watchdog.isCancelled == false && status == 128 + SIGKILL
    watchdog.cancel()
    if timedOut { throw TestFailure("\(executable) still ran after \(limit); killed. Output:\n\(lines.suffix(20).joined(separator: "\n"))") }
    return (status, lines.joined(separator: "\n"))
}
