import Foundation
/// Plain aligned columns for people (kubectl style): upper-case headers, two spaces between columns,
/// the last column unpadded.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    var rendered: String {
        let all = [headers] + rows
        let widths = headers.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// Prints the table, or says on stderr that there is nothing to show.
    func print(to terminal: Terminal, empty: String) {
        if rows.isEmpty { terminal.note(empty) } else { terminal.line(rendered) }
    }
}

/// `key: value` lines for one object (show/info/status).
struct Fields {
    var pairs: [(String, String)] = []

    mutating func add(_ key: String, _ value: String) { pairs.append((key, value)) }

    var rendered: String {
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { ($0.0 + ":").padding(toLength: width + 1, withPad: " ", startingAt: 0) + " " + $0.1 }.joined(separator: "\n")
    }
}
