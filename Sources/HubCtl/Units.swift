/// Durations and sizes as people type and read them: `90s`, `15m`, `12h`, `7d`, `2w`; `512`, `64K`, `1GiB`.
/// Sizes are binary (K = 1024).
enum Units {
    private static let secondsPer: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
    private static let bytesPer: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]

    /// Seconds in `text` (a bare number is seconds); nil when it is not a positive duration.
    static func seconds(_ text: String) -> Int64? {
        guard let last = text.last else { return nil }
        let (digits, unit) = last.isNumber ? (Substring(text), Int64(1)) : (text.dropLast(), secondsPer[last] ?? 0)
        guard unit > 0, !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int64(digits), n > 0 else { return nil }
        let (total, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : total
    }

    /// Bytes in `text`: a bare number, or one with K, M, G or T (optionally followed by `iB` or `B`).
    static func bytes(_ text: String) -> Int64? {
        var body = Substring(text)
        if body.hasSuffix("iB") { body = body.dropLast(2) } else if body.hasSuffix("B") { body = body.dropLast() }
        guard let last = body.last else { return nil }
        let (digits, unit) = last.isNumber ? (body, Int64(1)) : (body.dropLast(), bytesPer[Character(last.uppercased())] ?? 0)
        guard unit > 0, !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int64(digits), n > 0 else { return nil }
        let (total, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : total
    }

    /// `1536` → `1.5 KiB`; exact below 1 KiB.
    static func describe(bytes: Int64) -> String {
        guard bytes >= 1024 else { return "\(bytes) B" }
        var value = Double(bytes)
        for unit in ["KiB", "MiB", "GiB", "TiB"] {
            value /= 1024
            if value < 1024 || unit == "TiB" { return value < 10 ? "\(rounded(value, 1)) \(unit)" : "\(Int(value.rounded())) \(unit)" }
        }
        return "\(bytes) B"
    }

    /// `604800` → `7d`; the largest unit (up to days) that divides evenly.
    static func describe(seconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds % size == 0 && seconds >= size {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    private static func rounded(_ value: Double, _ places: Int) -> String {
        let scale = places == 1 ? 10.0 : 1.0
        let r = (value * scale).rounded() / scale
        return r == r.rounded() ? "\(Int(r)).0" : "\(r)"
    }
}
