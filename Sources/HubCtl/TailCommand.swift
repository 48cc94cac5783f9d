import AsyncHTTPClient
import ArgumentParser
import Foundation
import HubCore
import HubProtocol
import NIOCore
import NIOHTTP1

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail", abstract: "Print a slot's events or a stream's messages; -f keeps following.",
        discussion: """
            A slot prints '<seq> <type> <json>' per event (--json: {"seq","event","data"} per line); a JSON stream \
            prints one message per line (--json: {"offset","data"}); other streams print their bytes as stored. \
            Without --since/--from it starts -n back from the end: N messages of a stream, N seqs of a slot (seqs count \
            every stream of the slot, so a slot may show fewer events).

            -f follows live (SSE for slots, long-poll for streams). When the connection drops, tail reconnects with \
            exponential backoff and full jitter, resuming after the last entry it printed: nothing is printed twice.
              hubctl tail acme -f
              hubctl tail acme --since 0 --json > events.jsonl
              hubctl tail acme/orders --from -1
              hubctl tail acme/orders -f -n 0
            """)
    @Argument(help: "A slot (its events) or a stream path (slot/name).") var target: String
    @Flag(name: .shortAndLong, help: "Keep following: print new entries as they arrive.") var follow = false
    // `.unconditional`: `--from -1` is a value, not a flag.
    @Option(parsing: .unconditional, help: ArgumentHelp("Stream offset to start at: -1 (the beginning), now, or an offset.", valueName: "offset"))
    var from: String?
    @Option(help: ArgumentHelp("Slot seq to start after (0: everything retained).", valueName: "seq")) var since: UInt64?
    @Option(name: [.customShort("n"), .customLong("last")], help: ArgumentHelp("Start N messages (stream) or N seqs (slot) before the end.", valueName: "n")) var last: Int = 10
    @Option(name: .customLong("max-backoff"), help: ArgumentHelp("Longest wait between reconnects, in seconds.", valueName: "seconds"))
    var maxBackoff: Int = 30
    @OptionGroup var hub: HubOptions
    @OptionGroup var output: OutputOptions

    var isStream: Bool { target.contains("/") }

    func validate() throws {
        if isStream && since != nil { throw ValidationError("--since is a slot seq; for the stream '\(target)' use --from OFFSET") }
        if !isStream && from != nil { throw ValidationError("--from is a stream offset; for the slot '\(target)' use --since SEQ") }
        if let from, OffsetArgument(from) == nil { throw ValidationError("--from must be -1, now, or an offset (digits), not '\(from)'") }
        guard (0...100_000).contains(last) else { throw ValidationError("-n must be 0 to 100000") }
        guard (1...3600).contains(maxBackoff) else { throw ValidationError("--max-backoff must be 1 to 3600 seconds") }
    }

    func run() async throws {
        // Long-polls wait up to the hub's long-poll timeout (30 s by default): allow well beyond it per answer.
        let client = HubClient(target: try hub.target(Terminal.current.environment), timeout: .seconds(Int64(max(hub.timeout, 120))))
        try await client.using { client in
            var follower = Follower(client: client, json: output.json, backoff: Backoff(cap: .seconds(Int64(maxBackoff))))
            if isStream {
                try await follower.stream(target, from: from.flatMap(OffsetArgument.init), last: last, follow: follow)
            } else {
                try await follower.slot(target, since: since, last: last, follow: follow)
            }
        }
    }
}

/// A `--from` value.
enum OffsetArgument: Equatable {
    case beginning, now
    case at(UInt64)

    init?(_ text: String) {
        switch text {
        case "-1": self = .beginning
        case "now": self = .now
        default:
            guard !text.isEmpty, text.count <= 20, text.allSatisfy(\.isASCII), let n = UInt64(text) else { return nil }
            self = .at(n)
        }
    }

    var wire: String {
        switch self {
        case .beginning: "-1"
        case .now: "now"
        case let .at(n): OffsetArgument.format(n)
        }
    }

    static func format(_ n: UInt64) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }
}

/// Reads and prints entries, and in follow mode retries what can be retried. It only moves its cursor past what
/// it has printed, and only prints what lies past its cursor, so reconnects never print an entry twice.
struct Follower {
    let client: HubClient
    let json: Bool
    var backoff: Backoff
    let terminal = Terminal.current

    // MARK: Slot events

    mutating func slot(_ slot: String, since: UInt64?, last: Int, follow: Bool) async throws {
        let name = URLText.path(slot)
        let state = try await client.json(.GET, "/v1/slot/\(name)/state").json()
        let head = UInt64(state["head_seq"]?.int ?? 0)
        var cursor: UInt64
        if let since {
            cursor = since
        } else {
            let floor = UInt64(state["floor_seq"]?.int ?? 0)
            cursor = max(floor, head > UInt64(last) ? head - UInt64(last) : 0)
        }
        if !follow { return try await slotPages(name, after: cursor) }
        while true {
            do {
                let request = client.request(.GET, "/v1/events/\(name)/stream", headers: [("Accept", "text/event-stream"), ("Last-Event-ID", String(cursor))])
                let response = try await client.open(request, deadline: .distantFuture)
                if response.status.code >= 400 {
                    let body = try await response.body.collect(upTo: 64 << 10)
                    throw HubResponse.refusal(status: Int(response.status.code), body: Array(body.readableBytesView))
                }
                var parser = SSEParser()
                for try await chunk in response.body {
                    for event in parser.feed(chunk) {
                        if event.type == "error" { throw Self.streamError(event.data) }
                        guard let seq = event.id.flatMap(UInt64.init), seq > cursor else { continue }
                        printEvent(seq: seq, type: event.type, data: event.data)
                        cursor = seq
                        backoff.reset()
                    }
                }
                throw CtlError.unreachable("the hub ended the event stream")
            } catch {
                try await retry(after: HubClient.describe(error, hub: client.name))
            }
        }
    }

    /// Without -f: the list pages up to the slot's head, each event's data re-printed as the exact bytes stored.
    private func slotPages(_ name: String, after start: UInt64) async throws {
        var cursor = start
        while true {
            let page = try await client.send(.GET, "/v1/events/\(name)" + URLText.query([("since", String(cursor)), ("limit", "1000")]))
            do {
                let document = try JSONMessages.members(page.body)
                let events = try JSONMessages.flatten(document["events"] ?? ByteBuffer(string: "[]"), allowEmptyArray: true)
                for raw in events {
                    let event = try JSONMessages.members(raw)
                    guard let seq = event["seq"].flatMap({ UInt64(String(buffer: $0)) }), seq > cursor else { continue }
                    let type = event["event"].flatMap { try? JSONValue.parse(Array($0.readableBytesView)).string } ?? "message"
                    printEvent(seq: seq, type: type, data: event["data"].map { String(buffer: $0) } ?? "null")
                    cursor = seq
                }
                let next = document["next"].flatMap { UInt64(String(buffer: $0)) } ?? cursor
                let head = document["head"].flatMap { UInt64(String(buffer: $0)) } ?? cursor
                if next >= head || (events.isEmpty && next <= cursor) { return }
                cursor = max(cursor, next)
            } catch {
                throw CtlError.failed("the hub's event list is not the JSON expected: \(error)")
            }
        }
    }

    private func printEvent(seq: UInt64, type: String, data: String) {
        if json {
            terminal.line("{\"seq\":\(seq),\"event\":\(JSONText.quote(type)),\"data\":\(data)}")
        } else {
            terminal.line("\(seq) \(type) \(data)")
        }
    }

    // MARK: Streams

    mutating func stream(_ path: String, from: OffsetArgument?, last: Int, follow: Bool) async throws {
        let route = "/v1/stream/" + URLText.path(path)
        var offset: String
        var chosen = from != nil
        if let from {
            offset = from.wire
        } else {
            let head = try await client.send(.HEAD, route)
            let tail = head.headers.first(name: "Stream-Next-Offset").flatMap { UInt64($0) } ?? 0
            offset = tail > UInt64(last) ? OffsetArgument.format(tail - UInt64(last)) : "-1"
        }
        var cursor: String?
        while true {
            do {
                let live = follow && offset != "-1" && offset != "now"
                var query: [(String, String?)] = [("offset", offset)]
                if live { query += [("live", "long-poll"), ("cursor", cursor)] }
                let response: HubResponse
                do {
                    response = try await client.send(.GET, route + URLText.query(query))
                } catch CtlError.refused(410, "below-retention", _) where !chosen {
                    // The last N reach below what retention kept: start at the oldest record instead.
                    offset = "-1"
                    chosen = true
                    continue
                }
                chosen = true
                let next = response.headers.first(name: "Stream-Next-Offset") ?? offset
                if response.status == 200 { printChunk(response, startingAt: offset, next: next) }
                offset = next
                cursor = response.headers.first(name: "Stream-Cursor") ?? cursor
                backoff.reset()
                let upToDate = response.headers.first(name: "Stream-Up-To-Date") == "true"
                if response.headers.first(name: "Stream-Closed") == "true" && upToDate {
                    if follow { terminal.note("the stream is closed") }
                    return
                }
                if !follow && upToDate { return }
            } catch {
                guard follow else { throw error }
                try await retry(after: HubClient.describe(error, hub: client.name))
            }
        }
    }

    private func printChunk(_ response: HubResponse, startingAt offset: String, next: String) {
        let type = response.headers.first(name: "Content-Type") ?? ""
        if ContentType(validating: type)?.isJSON == true, let messages = try? JSONMessages.flatten(response.body, allowEmptyArray: true) {
            // Message i of this chunk sits at offset (next - count + i): offsets count messages.
            let first = (UInt64(next) ?? UInt64(messages.count)) - UInt64(messages.count)
            for (i, message) in messages.enumerated() {
                let text = String(buffer: message)
                terminal.line(json ? "{\"offset\":\"\(OffsetArgument.format(first + UInt64(i)))\",\"data\":\(text)}" : text)
            }
        } else if json {
            let encoded = Data(response.body.readableBytesView).base64EncodedString()
            terminal.line("{\"offset\":\"\(offset)\",\"next_offset\":\"\(next)\",\"base64\":\"\(encoded)\"}")
        } else {
            terminal.bytes(Array(response.body.readableBytesView))
        }
    }

    // MARK: Retrying

    /// Waits before the next attempt, or gives up: refusals other than overload are final.
    private mutating func retry(after error: CtlError) async throws {
        switch error {
        case .unreachable: break
        case let .refused(status, _, _) where status == 429 || status >= 500: break
        default: throw error
        }
        let delay = backoff.next()
        terminal.note("hubctl: \(error.message.replacingOccurrences(of: "hubctl: ", with: "")); reconnecting in \(Self.describe(delay))")
        try await Task.sleep(for: delay)
    }

    static func describe(_ d: Duration) -> String {
        let ms = d.milliseconds
        return ms < 1000 ? "\(ms) ms" : String(format: "%.1f s", Double(ms) / 1000)
    }

    /// An SSE `event: error`: its data is a problem document, read as an error answer would be.
    static func streamError(_ data: String) -> CtlError {
        let status = (try? JSONValue.parse(Array(data.utf8)))?["status"]?.int ?? 500
        return HubResponse.refusal(status: Int(status), body: Array(data.utf8))
    }
}
