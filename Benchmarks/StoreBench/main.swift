// Store-only throughput: appends straight into SQLiteStreamStore, no HTTP. Separates the store's cost from the
// HTTP front's in the numbers of Benchmarks/RESULTS.md.
//
//   swift run -c release StoreBench [appenders] [appends per appender] [messages per append] [normal|full]
import Foundation
import HubCore
import HubSQLite
import NIOCore

let args = CommandLine.arguments
let appenders = args.count > 1 ? Int(args[1])! : 4
let perAppender = args.count > 2 ? Int(args[2])! : 20_000
let batch = args.count > 3 ? Int(args[3])! : 1
let sync = args.count > 4 ? SQLiteStreamStore.Synchronous(rawValue: args[4])! : .normal

let directory = NSTemporaryDirectory() + "storebench-\(getpid())"
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }
let store = try SQLiteStreamStore(.init(path: directory + "/hub.db", synchronous: sync), signal: LocalChangeSignal())
let json = ContentType(validating: "application/json")!
let path = StreamPath("bench/s")!
_ = try await store.create(path, CreateRequest(contentType: json))
let payload = ByteBuffer(string: #"{"k":""# + String(repeating: "x", count: 90) + #""}"#)
let messages = [NewMessage](repeating: NewMessage(body: payload), count: batch)

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
let cpu0 = cpuSeconds()
let start = ContinuousClock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for _ in 0..<appenders {
        group.addTask {
            for _ in 0..<perAppender { _ = try await store.append(path, AppendRequest(contentType: json, messages: messages)) }
        }
    }
    try await group.waitForAll()
}
let elapsed = ContinuousClock.now - start
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let cpu = cpuSeconds() - cpu0
let appends = appenders * perAppender
print(String(format: "appenders=%d batch=%d sync=%@: %.0f appends/s, %.0f msgs/s, %.1f µs CPU per append, %.2f µs CPU per message",
             appenders, batch, sync.rawValue, Double(appends) / seconds, Double(appends * batch) / seconds,
             cpu / Double(appends) * 1e6, cpu / Double(appends * batch) * 1e6))
await store.close()
