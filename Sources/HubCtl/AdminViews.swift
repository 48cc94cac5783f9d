import HubProtocol
import Foundation

/// How the admin API's documents read for people. One place per resource, so `ls` and `show` agree.
enum AdminViews {
    static func slotRow(_ s: JSONValue) -> [String] {
        [s["name"].cell, s["streams"].cell, s["records"].cell, bytes(s["bytes"]), s["head_seq"].cell, retention(s["retention"]), s["created_at"].cell]
    }
    static let slotHeaders = ["NAME", "STREAMS", "RECORDS", "SIZE", "HEAD", "RETENTION", "CREATED"]

    static func slotFields(_ s: JSONValue) -> Fields {
        var f = Fields()
        f.add("name", s["name"].cell)
        f.add("created", s["created_at"].cell)
        f.add("streams", s["streams"].cell)
        f.add("records", s["records"].cell)
        f.add("size", bytes(s["bytes"]))
        f.add("head seq", s["head_seq"].cell)
        f.add("retention", retention(s["retention"]))
        f.add("max message", s["limits"]?["max_message_bytes"]?.int.map { Units.describe(bytes: $0) } ?? "hub default")
        f.add("max subscribers", s["limits"]?["max_subscribers"]?.int.map(String.init) ?? "no limit")
        let anonymous = [("read", s["anonymous"]?["read"]?.bool), ("append", s["anonymous"]?["append"]?.bool)].filter { $0.1 == true }.map(\.0)
        f.add("anonymous", anonymous.isEmpty ? "none" : anonymous.joined(separator: ","))
        return f
    }

    static func retention(_ r: JSONValue?) -> String {
        var parts: [String] = []
        if let age = r?["max_age_s"]?.int { parts.append("age \(Units.describe(seconds: age))") }
        if let size = r?["max_bytes"]?.int { parts.append("size \(Units.describe(bytes: size))") }
        if let count = r?["max_records"]?.int { parts.append("records \(count)") }
        return parts.isEmpty ? "forever" : parts.joined(separator: ", ")
    }

    static let tokenHeaders = ["ID", "SLOT", "SCOPES", "PREFIX", "LABEL", "EXPIRES", "LAST USED", "STATE"]

    static func tokenRow(_ t: JSONValue) -> [String] {
        let state = !(t["revoked_at"]?.isNull ?? true) ? "revoked" : (t["rotated_from"]?.string != nil ? "active (rotated)" : "active")
        return [t["id"].cell, t["slot"].cell, t["scopes"].cell, t["prefix"].cell, t["label"].cell, t["expires_at"].cell,
                t["last_used_at"].cell, state]
    }

    static let streamHeaders = ["PATH", "TYPE", "RECORDS", "SIZE", "NEXT OFFSET", "STATE", "CREATED"]

    static func streamRow(_ s: JSONValue) -> [String] {
        [s["path"].cell, s["content_type"].cell, s["records"].cell, bytes(s["bytes"]), s["next_offset"].cell, streamState(s), s["created_at"].cell]
    }

    static func streamFields(_ s: JSONValue) -> Fields {
        var f = Fields()
        f.add("path", s["path"].cell)
        f.add("content type", s["content_type"].cell)
        f.add("created", s["created_at"].cell)
        f.add("records", s["records"].cell)
        f.add("size", bytes(s["bytes"]))
        f.add("next offset", s["next_offset"].cell)
        f.add("state", streamState(s))
        f.add("forked from", s["forked_from"].cell)
        return f
    }

    static func streamState(_ s: JSONValue) -> String {
        s["deleted"]?.bool == true ? "deleted (forks read it)" : (s["closed"]?.bool == true ? "closed" : "open")
    }

    static let consumerHeaders = ["SLOT", "NAME", "STREAM", "ACKED", "HEAD", "LAG", "ACK WAIT", "IN FLIGHT", "UPDATED"]

    static func consumerRow(_ c: JSONValue) -> [String] {
        [c["slot"].cell, c["name"].cell, c["stream"]?.string ?? "(slot)", c["acked_seq"].cell, c["head_seq"].cell, c["lag"].cell,
         c["ack_wait_ms"]?.int.map { "\($0)ms" } ?? "-", c["max_in_flight"].cell, c["updated_at"].cell]
    }

    static func bytes(_ value: JSONValue?) -> String { value?.int.map { Units.describe(bytes: $0) } ?? "-" }
}

extension Terminal {
    /// A JSON answer from the hub as it came (`--json`).
    func document(_ response: HubResponse) {
        line(response.text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// An `{"items":[…]}` answer (every `ls`): the document as it came with `--json`, else a table, or `empty`
    /// on stderr when there are no items.
    func list(_ response: HubResponse, json: Bool, headers: [String], row: (JSONValue) -> [String], empty: String) throws(CtlError) {
        if json { return document(response) }
        let items = try response.json()["items"]?.array ?? []
        Table(headers: headers, rows: items.map(row)).print(to: self, empty: empty)
    }
}
