import Foundation
import Glibc
import HubCore

/// Where a webhook may point (§11, SSRF guard). A hub usually sits inside a network it can reach and its users cannot,
/// so by default deliveries go only to public hosts over https. Loopback (the protocol's development rule: `http://`
/// to `localhost` or `127.x`) and private ranges are opt-in; link-local (cloud metadata services), unspecified,
/// multicast and reserved addresses are always refused. Names are checked again, resolved, before every delivery.
public struct WebhookURLPolicy: Sendable {
    /// `http(s)://localhost`, `127.0.0.0/8` and `::1`.
    public var allowLoopback: Bool
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 and fc00::/7.
    public var allowPrivate: Bool

    public init(allowLoopback: Bool = false, allowPrivate: Bool = false) {
        self.allowLoopback = allowLoopback; self.allowPrivate = allowPrivate
    }

    public enum AddressClass: Equatable, Sendable { case publicAddress, loopback, privateRange, linkLocal, reserved }

    /// Checks a URL as registered: its form, scheme and host (an IP literal by its class; names only for `localhost`).
    public func check(_ text: String) throws(SubscriptionError) {
        guard text.utf8.count <= 2048, let url = URL(string: text), let scheme = url.scheme?.lowercased(),
              let host = url.host?.lowercased(), !host.isEmpty else {
            throw .webhookURLRejected("webhook.url must be an absolute http(s) URL.")
        }
        guard url.user == nil, url.password == nil else { throw .webhookURLRejected("webhook.url must not carry credentials.") }
        guard scheme == "https" || scheme == "http" else { throw .webhookURLRejected("webhook.url must use https.") }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let kind = Self.classify(host: bare) ?? .publicAddress
        try allow(kind, host: bare)
        if scheme == "http" && kind == .publicAddress {
            throw .webhookURLRejected("webhook.url must use https (plain http only to loopback or, where allowed, private hosts).")
        }
    }

    /// Checks the addresses a host resolves to right before a delivery (a public name may resolve to a private address).
    public func checkResolved(host: String) async throws(SubscriptionError) {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let kind = Self.classify(host: bare) { return try allow(kind, host: bare) }
        let addresses = await Self.resolve(bare)
        guard !addresses.isEmpty else { throw .webhookURLRejected("'\(bare.prefix(100))' does not resolve.") }
        for address in addresses { try allow(Self.classify(host: address) ?? .reserved, host: bare) }
    }

    private func allow(_ kind: AddressClass, host: String) throws(SubscriptionError) {
        switch kind {
        case .publicAddress: return
        case .loopback where allowLoopback: return
        case .privateRange where allowPrivate: return
        case .loopback: throw .webhookURLRejected("webhook.url must not target loopback hosts ('\(host.prefix(100))'); this hub does not allow them.")
        case .privateRange: throw .webhookURLRejected("webhook.url must not target private or link-local hosts ('\(host.prefix(100))').")
        case .linkLocal: throw .webhookURLRejected("webhook.url must not target link-local hosts ('\(host.prefix(100))').")
        case .reserved: throw .webhookURLRejected("webhook.url must not target a reserved address ('\(host.prefix(100))').")
        }
    }

    /// The class of an IP literal or of `localhost`; nil for any other name.
    public static func classify(host: String) -> AddressClass? {
        if host == "localhost" || host.hasSuffix(".localhost") { return .loopback }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            let b = withUnsafeBytes(of: v4.s_addr) { Array($0) }
            return classifyV4(b)
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        let b = withUnsafeBytes(of: v6) { Array($0) }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return classifyV4(Array(b[12..<16])) }  // ::ffff:a.b.c.d
        if b[0..<15].allSatisfy({ $0 == 0 }) { return b[15] == 1 ? .loopback : .reserved }  // ::1, ::
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return .linkLocal }  // fe80::/10
        if b[0] & 0xFE == 0xFC { return .privateRange }  // fc00::/7
        if b[0] == 0xFF { return .reserved }  // multicast
        return .publicAddress
    }

    private static func classifyV4(_ b: [UInt8]) -> AddressClass {
        switch (b[0], b[1]) {
        case (127, _): return .loopback
        case (10, _), (192, 168): return .privateRange
        case (172, let x) where (16...31).contains(x): return .privateRange
        case (100, let x) where (64...127).contains(x): return .privateRange
        case (169, 254): return .linkLocal
        case (0, _), (224...255, _): return .reserved
        default: return .publicAddress
        }
    }

    /// Every address `host` resolves to, as text (getaddrinfo on a thread of its own: it blocks).
    static func resolve(_ host: String) async -> [String] {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var list: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(host, nil, &hints, &list) == 0 else { return continuation.resume(returning: []) }
                defer { freeaddrinfo(list) }
                var out: [String] = []
                var node = list
                while let info = node?.pointee {
                    var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                    if getnameinfo(info.ai_addr, info.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                        out.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                    }
                    node = info.ai_next
                }
                continuation.resume(returning: out)
            }
        }
    }
}
