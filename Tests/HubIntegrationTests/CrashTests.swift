import Foundation
import HubTestSupport
import Synchronization
import Testing

@Suite("Durability")
struct CrashTests {
    @Test("kill -9 during concurrent appends loses no acknowledged append and duplicates none")
    func killNine() async throws {
        let directory = try TemporaryDirectory()
        let first = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open"])
        let stream = "/v1/stream/crash/log"
        #expect(try await first.client.request(.PUT, stream, headers: [("Content-Type", "application/json")]).status == 201)

        let acknowledged = Acknowledged()
        let writers = 4
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    var i = 0
                    while true {
                        let body = #"{"w":\#(w),"i":\#(i)}"#
                        guard let r = try? await first.client.request(.POST, stream, headers: [("Content-Type", "application/json")], body: body) else { return }
                        guard r.status == 204 else { throw TestFailure("append answered \(r.status)") }
                        acknowledged.insert(body)
                        i += 1
                    }
                }
            }
            // Kill while all writers are mid-flight, once enough appends were acknowledged.
            try await eventually { acknowledged.count >= 300 }
            await first.kill9()
            try await group.waitForAll()
        }

        let second = try await HubdProcess(dataDirectory: directory.path, arguments: ["--auth", "open"])
        var messages: [String] = []
        var offset = "-1"
        while true {
            let r = try await second.client.request(.GET, stream + "?offset=\(offset)")
            #expect(r.status == 200)
            let array = try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [[String: Int]] ?? []
            messages += array.map { #"{"w":\#($0["w"]!),"i":\#($0["i"]!)}"# }
            offset = r.header("Stream-Next-Offset")!
            if r.header("Stream-Up-To-Date") == "true" { break }
        }
        let stored = Set(messages)
        let acked = acknowledged.all
        #expect(stored.count == messages.count, "no record is stored twice")
        #expect(acked.isSubset(of: stored), "every acknowledged append survived: missing \(acked.subtracting(stored).sorted().prefix(5))")
        #expect(stored.count - acked.count <= writers, "at most one in-flight append per writer was committed unacknowledged")
        #expect(try await second.client.request(.POST, stream, headers: [("Content-Type", "application/json")], body: "{}").status == 204)
        #expect(await second.terminate() == 0, "SIGTERM exits 0")
    }
}

/// Appends the server acknowledged, shared by the writer tasks.
final class Acknowledged: Sendable {
    private let bodies = Mutex(Set<String>())
    func insert(_ body: String) { bodies.withLock { _ = $0.insert(body) } }
    var count: Int { bodies.withLock { $0.count } }
    var all: Set<String> { bodies.withLock { $0 } }
}
