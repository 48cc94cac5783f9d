import HubProtocol
import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish", abstract: "Append an event to a slot, or data to a stream.",
        discussion: """
            A bare slot name posts events (JSON: one value, or an array of events) and prints each event's seq. \
            A stream path (slot/name) appends to that Durable Stream and prints its next offset. The data is the \
            argument, else --file, else stdin.
              hubctl publish acme '{"type":"order.created","total":42}'
              hubctl publish acme --type order.created --id ord-17 '{"total":42}'
              tail -f app.log | while read -r line; do hubctl publish acme/log "$line" --content-type text/plain; done
              hubctl publish acme/orders --file batch.json
            """)
    @Argument(help: "A slot (events) or a stream path (slot/name).") var target: String
    @Argument(help: "The data; omit to read --file or stdin.") var data: String?
    @Option(help: ArgumentHelp("Read the data from this file ('-' for stdin).", valueName: "file")) var file: String?
    @Option(help: ArgumentHelp("Event type (slots only; default: the event's \"type\" field).", valueName: "type")) var type: String?
    @Option(help: ArgumentHelp("Idempotency key: a retry with the same key is stored once (slots only).", valueName: "key")) var id: String?
    @Option(name: .customLong("content-type"), help: ArgumentHelp("Content type for a stream append (default: the stream's own).", valueName: "type"))
    var contentType: String?
    @OptionGroup var hub: HubOptions
    @OptionGroup var output: OutputOptions

    static let maxBytes = 64 << 20

    var isStream: Bool { target.contains("/") }

    func validate() throws {
        if data != nil && file != nil { throw ValidationError("give the data as an argument or with --file, not both") }
        if isStream && (type != nil || id != nil) { throw ValidationError("--type and --id are for slots (events); '\(target)' is a stream") }
        if !isStream && contentType != nil { throw ValidationError("--content-type is for streams; events are JSON") }
    }

    func run() async throws {
        let body = try readBody()
        let response = try await HubClient.with(hub) { client in
            if isStream {
                var type = contentType
                if type == nil {
                    let head = try await client.send(.HEAD, "/v1/stream/" + URLText.path(target))
                    type = head.headers.first(name: "Content-Type")
                }
                return try await client.send(.POST, "/v1/stream/" + URLText.path(target), headers: [("Content-Type", type ?? "application/octet-stream")], body: body)
            }
            var headers = [("Content-Type", "application/json")]
            if let type { headers.append(("Event-Type", type)) }
            if let id { headers.append(("Idempotency-Key", id)) }
            return try await client.send(.POST, "/v1/events/" + URLText.path(target), headers: headers, body: body)
        }
        let terminal = Terminal.current
        if isStream {
            let next = response.headers.first(name: "Stream-Next-Offset") ?? ""
            return output.json ? terminal.line(JSONValue.object(["next_offset": .string(next)]).serialized) : terminal.line(next)
        }
        if output.json { return terminal.document(response) }
        let answer = try response.json()
        for seq in answer["seqs"]?.array ?? [answer["seq"] ?? .null] { terminal.line(seq.cell) }
    }

    private func readBody() throws -> ByteBuffer {
        let bytes: [UInt8]?
        if let data {
            bytes = Array(data.utf8)
        } else if let file, file != "-" {
            guard let contents = FileManager.default.contents(atPath: file) else { throw CtlError.usage("cannot read --file \(file)") }
            bytes = contents.count > Self.maxBytes ? nil : Array(contents)
        } else {
            bytes = Terminal.current.input(limit: Self.maxBytes)
        }
        guard let bytes else { throw CtlError.usage("the data is larger than \(Self.maxBytes >> 20) MiB") }
        guard !bytes.isEmpty else { throw CtlError.usage("no data to publish (give it as an argument, with --file, or on stdin)") }
        return ByteBuffer(bytes: bytes)
    }
}
