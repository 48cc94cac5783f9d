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
