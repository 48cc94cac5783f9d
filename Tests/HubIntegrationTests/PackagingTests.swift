import Foundation
import HubTestSupport
import Testing

@Suite("Packaging: systemd units")
struct PackagingTests {
    static let units = ["eventhub.service", "eventhub.socket", "eventhub-admin.socket"]

    func unit(_ name: String) throws -> String {
        try String(contentsOf: packageRoot.appendingPathComponent("packaging/systemd/\(name)"), encoding: .utf8)
    }

    @Test("systemd-analyze verify accepts the units (ExecStart pointed at the built hubd)")
    func verify() async throws {
        let analyze = "/usr/bin/systemd-analyze"
        guard requireExecutable(analyze, "install Debian's systemd package (scripts/setup does)") else { return }
        let directory = try TemporaryDirectory()
        for name in Self.units {
            let text = try unit(name).replacingOccurrences(of: "/usr/bin/hubd", with: HubdProcess.binary)
            try text.write(toFile: directory.path + "/" + name, atomically: true, encoding: .utf8)
        }
        let process = try ChildProcess(analyze, ["verify", "--man=no"] + Self.units.map { directory.path + "/" + $0 })
        var output: [String] = []
        for await line in process.lines() { output.append(line) }
        #expect(await process.wait() == 0, "\(output.joined(separator: "\n"))")
        #expect(output.isEmpty, "no warnings: \(output.joined(separator: "\n"))")
    }

    @Test("the service is Type=notify, hardened, and wired to its sockets by name")
    func hardening() throws {
        let service = try unit("eventhub.service")
        for line in ["Type=notify", "User=eventhub", "StateDirectory=eventhub", "RuntimeDirectory=eventhub", "ProtectSystem=strict",
                     "NoNewPrivileges=yes", "LimitNOFILE=65536", "WatchdogSec=30s", "ExecReload=/bin/kill -HUP $MAINPID",
                     "Requires=eventhub.socket eventhub-admin.socket"] {
            #expect(service.contains(line + "\n"), "eventhub.service lacks \(line)")
        }
        #expect(try unit("eventhub.socket").contains("FileDescriptorName=http\n"))
        let admin = try unit("eventhub-admin.socket")
        #expect(admin.contains("FileDescriptorName=admin\n") && admin.contains("SocketMode=0600\n"))
    }
}
