@testable import HubCtl
import HubProtocol
import NIOCore
import Testing

@Suite("hubctl: pure parts")
struct CtlUnitTests {
    @Test("durations and sizes parse as typed, and refuse what they are not")
    func units() {
        #expect(Units.seconds("90") == 90)
        #expect(Units.seconds("90s") == 90)
        #expect(Units.seconds("15m") == 900)
        #expect(Units.seconds("12h") == 43_200)
        #expect(Units.seconds("7d") == 604_800)
        #expect(Units.seconds("2w") == 1_209_600)
        for bad in ["", "0", "-5", "5x", "d", "1.5h", "99999999999999999999d", "１h"] { #expect(Units.seconds(bad) == nil, "\(bad)") }
        #expect(Units.bytes("512") == 512)
        #expect(Units.bytes("64K") == 65_536)
        #expect(Units.bytes("64k") == 65_536)
        #expect(Units.bytes("1GiB") == 1 << 30)
        #expect(Units.bytes("10G") == 10 << 30)
        #expect(Units.bytes("3MB") == 3 << 20)
        for bad in ["", "0", "K", "1.5G", "12Q", "-1"] { #expect(Units.bytes(bad) == nil, "\(bad)") }
        #expect(Units.describe(bytes: 1000) == "1000 B")
        #expect(Units.describe(bytes: 1536) == "1.5 KiB")
        #expect(Units.describe(bytes: 1 << 30) == "1.0 GiB")
        #expect(Units.describe(bytes: 200 << 20) == "200 MiB")
        #expect(Units.describe(seconds: 604_800) == "7d")
        #expect(Units.describe(seconds: 5400) == "90m")
        #expect(Units.describe(seconds: 61) == "61s")
    }

    @Test("backoff: full jitter under a ceiling that doubles up to the cap, and starts over on reset")
    func backoff() {
        var b = Backoff(base: .milliseconds(100), cap: .seconds(1))
        #expect(b.ceiling == .milliseconds(100))
        #expect(b.next(fraction: 0.5) == .milliseconds(50))
        #expect(b.ceiling == .milliseconds(200))
        #expect(b.next(fraction: 0) == .zero)
        #expect(b.next(fraction: 0.999) < .milliseconds(400))
        for _ in 0..<50 { _ = b.next() }
        #expect(b.ceiling == .seconds(1))
        #expect(b.next(fraction: 0.25) == .milliseconds(250))
        b.reset()
        #expect(b.ceiling == .milliseconds(100))
    }

    @Test("latency histogram: exact below 256 µs, bounded error above, percentiles by rank")
    func histogram() {
        #expect(LatencyHistogram.bucket(of: 255) == 255)
        #expect(LatencyHistogram.bucket(of: 256) == LatencyHistogram.bucket(of: 257))
        #expect(LatencyHistogram.bucket(of: 257) != LatencyHistogram.bucket(of: 258))
        for value: UInt64 in [300, 1000, 12_345, 1_000_000, 90_000_000] {
            let upper = LatencyHistogram.upperBound(of: LatencyHistogram.bucket(of: value))
            #expect(upper >= value && Double(upper - value) / Double(value) < 0.008, "\(value) → \(upper)")
        }
        var h = LatencyHistogram()
        for v in 1...100 { h.record(micros: UInt64(v)) }
        #expect(h.value(at: 0.5) == 50)
        #expect(h.value(at: 0.99) == 99)
        #expect(h.value(at: 1) == 100)
        var other = LatencyHistogram()
        other.record(micros: 5000)
        h.merge(other)
        #expect(h.total == 101 && h.max == 5000 && h.value(at: 1) == 5000)
        #expect(LatencyHistogram().value(at: 0.5) == 0)
    }

    @Test("benchmark events: padded to size, valid JSON, and their fields read back")
    func benchEvents() throws {
        let batch = BenchEvent.batch(publisher: 3, first: 7, count: 2, size: 100)
        let text = String(buffer: batch)
        let events = try #require(JSONValue.parse(Array(text.utf8)).array)
        #expect(events.count == 2)
        #expect(events[1]["p"] == .int(3) && events[1]["n"] == .int(8))
        #expect(events[0].serialized.utf8.count == 100)
        #expect(BenchEvent.number(after: "\"seq\":", in: #"{"seq":42,"stream":"a","event":{"t":17}}"#) == 42)
        #expect(BenchEvent.sentAt(in: #"{"ts":"x","event":{"t":1700000000123456789,"p":0}}"#) == 1_700_000_000_123_456_789)
        #expect(BenchEvent.number(after: "\"seq\":", in: #"{"seq":"x"}"#) == nil)
    }

    @Test("delivery tally counts each expected seq once and the repeats as duplicates")
    func tally() {
        var t = DeliveryTally(base: 10, expected: 3)
        for seq: UInt64 in [11, 12, 12, 9, 14, 13] { t.record(seq: seq, sentAt: nil, counters: nil) }
        #expect(t.result.unique == 3 && t.result.duplicates == 1 && t.complete)
    }

    @Test("offsets for --from, tables and JSON output are exact")
    func formats() throws {
        #expect(OffsetArgument("-1") == .beginning)
        #expect(OffsetArgument("now") == .now)
        #expect(OffsetArgument("42")?.wire == "00000000000000000042")
        for bad in ["", "x", "-2", "1e3", "123456789012345678901"] { #expect(OffsetArgument(bad) == nil, "\(bad)") }
        let table = Table(headers: ["NAME", "SIZE", "NOTE"], rows: [["acme", "1.5 KiB", "x"], ["b", "0 B", "long note"]])
        #expect(table.rendered == "NAME  SIZE     NOTE\nacme  1.5 KiB  x\nb     0 B      long note")
        var fields = Fields()
        fields.add("name", "acme")
        fields.add("head seq", "3")
        #expect(fields.rendered == "name:     acme\nhead seq: 3")
        let value = try JSONValue.parse(Array(#"{"b":[1,true,null,"x\"y"],"a":{"c":2.5}}"#.utf8))
        #expect(value.serialized == #"{"a":{"c":2.5},"b":[1,true,null,"x\"y"]}"#)
        #expect(value["b"]?.cell == "1,true,-,x\"y")
    }

    @Test("URL text keeps stream path separators and escapes everything else")
    func urlText() {
        #expect(URLText.path("acme/orders.v2") == "acme/orders.v2")
        #expect(URLText.path("a b/c?d") == "a%20b/c%3Fd")
        #expect(URLText.query([("slot", "a&b"), ("x", nil), ("limit", "5")]) == "?slot=a%26b&limit=5")
        #expect(URLText.query([("x", nil)]) == "")
    }
}
