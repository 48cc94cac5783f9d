import Foundation
import HubCore
import Testing

@testable import HubAuth

@Suite("Token format and grants")
struct AuthTests {
    @Test("tokens are hub_ + 43 base64url characters, distinct, and hashed with SHA-256")
    func format() {
        let a = BearerToken.generate(), b = BearerToken.generate()
        #expect(a.secret.count == 47 && a.secret.hasPrefix("hub_") && a != b)
        #expect(BearerToken(parsing: a.secret) == a)
        #expect(a.digest.count == 64 && a.digest != b.digest)
        #expect(BearerToken.digest(of: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        for bad in ["", "hub_", "hub_short", "tok_" + String(repeating: "a", count: 43), "hub_" + String(repeating: "a", count: 42) + "=",
                    "hub_" + String(repeating: "a", count: 44), "HUB_" + String(repeating: "a", count: 43)] {
            #expect(BearerToken(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("base64url without padding")
    func base64url() {
        #expect(Base64URL.encode(Array("f".utf8)) == "Zg")
        #expect(Base64URL.encode(Array("foob".utf8)) == "Zm9vYg")
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test("the Authorization header: Bearer, any case")
    func header() {
        #expect(BearerToken.fromAuthorization("Bearer abc") == "abc")
        #expect(BearerToken.fromAuthorization("bearer  abc") == "abc")
        #expect(BearerToken.fromAuthorization("Basic abc") == nil)
        #expect(BearerToken.fromAuthorization("Bearer") == nil)
    }

    @Test("grants: slot, whole-segment prefix, scopes; admin implies the rest within reach")
    func grants() throws {
        let acme = SlotName("acme")!
        let reader = Grant(tokenID: "t", slot: acme, scopes: [.read], prefix: "acme/orders", expiresAtMs: nil)
        #expect(throws: Never.self) { try reader.authorize(.read, on: StreamPath("acme/orders")!) }
        #expect(throws: Never.self) { try reader.authorize(.read, on: StreamPath("acme/orders/eu")!) }
        #expect(throws: AuthError.outOfReach) { try reader.authorize(.read, on: StreamPath("acme/orders2")!) }
        #expect(throws: AuthError.outOfReach) { try reader.authorize(.read, on: StreamPath("other/orders")!) }
        #expect(throws: AuthError.insufficientScope(.append)) { try reader.authorize(.append, on: StreamPath("acme/orders")!) }
        let slotAdmin = Grant(tokenID: "t", slot: acme, scopes: [.admin], prefix: nil, expiresAtMs: nil)
        #expect(throws: Never.self) { try slotAdmin.authorize(.delete, on: StreamPath("acme/x")!) }
        #expect(!slotAdmin.isGlobalAdmin && slotAdmin.reaches(slot: acme) && !slotAdmin.reaches(slot: SlotName("b")!))
        #expect(Grant.everything("x").isGlobalAdmin)
    }
}

@Suite("Subscription credentials")
struct SubscriptionCredentialsTests {
    let credentials = try! SubscriptionCredentials(seed: Array(repeating: 7, count: 32))
    let key = SubscriptionKey(namespace: "", id: "s1")!

    @Test("callback tokens: bound to the subscription and generation, tamper-evident, expiring")
    func tokens() throws {
        let token = credentials.callbackToken(for: key, generation: 3, nowMs: 1_000)
        #expect(token.hasPrefix("dscb.3."))
        #expect(try credentials.verifyCallbackToken(token, for: key, nowMs: 2_000) == 3)
        #expect(throws: SubscriptionError.tokenInvalid) { try credentials.verifyCallbackToken(token, for: SubscriptionKey(namespace: "", id: "s2")!, nowMs: 2_000) }
        #expect(throws: SubscriptionError.tokenInvalid) { try credentials.verifyCallbackToken(token.replacingOccurrences(of: "dscb.3.", with: "dscb.4."), for: key, nowMs: 2_000) }
        #expect(throws: SubscriptionError.tokenInvalid) { try credentials.verifyCallbackToken("hub_abc", for: key, nowMs: 2_000) }
        let other = try SubscriptionCredentials(seed: Array(repeating: 8, count: 32))
        #expect(throws: SubscriptionError.tokenInvalid) { try other.verifyCallbackToken(token, for: key, nowMs: 2_000) }
        #expect(throws: SubscriptionError.tokenExpired) { try credentials.verifyCallbackToken(token, for: key, nowMs: 1_000 + SubscriptionCredentials.tokenLifetimeMs) }
    }

    @Test("webhook signatures verify against the published key, and only for the signed body")
    func signatures() throws {
        let header = credentials.signatureHeader(body: Array("{}".utf8), unixSeconds: 1_700_000_000)
        #expect(header.hasPrefix("t=1700000000,kid=\(credentials.keyID),ed25519="))
        let jwks = try JSONSerialization.jsonObject(with: Data(credentials.jwks.utf8)) as? [String: Any]
        let key = (jwks?["keys"] as? [[String: Any]])?.first ?? [:]
        let x = key["x"] as? String ?? ""
        #expect(key["kid"] as? String == credentials.keyID && credentials.keyID.hasPrefix("ds_") && credentials.keyID.count == 19)
        #expect(SubscriptionCredentials.verify(signatureHeader: header, body: Array("{}".utf8), keyID: credentials.keyID, publicKey: x))
        #expect(!SubscriptionCredentials.verify(signatureHeader: header, body: Array("{ }".utf8), keyID: credentials.keyID, publicKey: x))
        #expect(!SubscriptionCredentials.verify(signatureHeader: header.replacingOccurrences(of: "t=1700000000", with: "t=1700000001"),
                                                body: Array("{}".utf8), keyID: credentials.keyID, publicKey: x))
    }

    @Test("base64url and hex round-trip exact bytes")
    func encodings() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
            #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        }
        #expect(Base64URL.decode("a") == nil && Base64URL.decode("ab+c") == nil && Hex.decode("abc") == nil && Hex.decode("zz") == nil)
        #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00abff")
    }
}
