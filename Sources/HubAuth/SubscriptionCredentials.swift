import Crypto
import HubCore

/// The hub's subscription credentials (§11), derived from one 32-byte seed every node shares (stored once in the
/// store): the Ed25519 key that signs webhook deliveries (published at `__ds/jwks.json`), and the HMAC key of the
/// callback tokens that webhook consumers and pull-wake holders present.
public struct SubscriptionCredentials: Sendable {
    public static let seedName = "subscriptions.seed"
    // Raw bytes: Crypto's key types are not Sendable; rebuilding a key from 32 bytes is cheap next to a delivery.
    private let seed: [UInt8]
    private let tokenKeyBytes: [UInt8]
    private var signingKey: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: seed) }  // checked in init
    private var tokenKey: SymmetricKey { SymmetricKey(data: tokenKeyBytes) }
    /// `ds_` and the first 16 hex digits of the public key's SHA-256: the `kid` of the signature header and the JWKS.
    public let keyID: String

    public static func makeSeed() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    public init(seed: [UInt8]) throws {
        let signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        self.seed = seed
        // A separate key for tokens, so no signature can ever double as a token MAC.
        tokenKeyBytes = Array(HMAC<SHA256>.authenticationCode(for: Array("callback-tokens".utf8), using: SymmetricKey(data: seed)))
        keyID = "ds_" + Hex.encode(Array(SHA256.hash(data: signingKey.publicKey.rawRepresentation)).prefix(8))
    }

    // MARK: Webhook signatures

    /// `Webhook-Signature: t=<unix>,kid=<kid>,ed25519=<base64url signature over "<t>.<body>">`.
    public func signatureHeader(body: [UInt8], unixSeconds: Int64) -> String {
        let signed = Array("\(unixSeconds).".utf8) + body
        let signature = (try? signingKey.signature(for: signed)).map { Base64URL.encode(Array($0)) } ?? ""
        return "t=\(unixSeconds),kid=\(keyID),ed25519=\(signature)"
    }

    /// The public key as a JSON Web Key Set (`application/jwk-set+json`).
    public var jwks: String {
        let x = Base64URL.encode(Array(signingKey.publicKey.rawRepresentation))
        return #"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"\#(keyID)","x":"\#(x)"}]}"#
    }

    /// Checks a signature header against a published key (`kid` and base64url `x` of the JWKS): what a receiver does.
    public static func verify(signatureHeader header: String, body: [UInt8], keyID: String, publicKey x: String) -> Bool {
        var fields: [Substring: Substring] = [:]
        for part in header.split(separator: ",") {
            guard let eq = part.firstIndex(of: "=") else { return false }
            fields[part[..<eq]] = part[part.index(after: eq)...]
        }
        guard let t = fields["t"], fields["kid"].map(String.init) == keyID, let signature = fields["ed25519"].flatMap({ Base64URL.decode(String($0)) }),
              let raw = Base64URL.decode(x), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            return false
        }
        return key.isValidSignature(signature, for: Array("\(t).".utf8) + body)
    }

    // MARK: Callback tokens

    /// How long a callback token is accepted at most; fencing by generation ends it earlier.
    public static let tokenLifetimeMs: Int64 = 24 * 3_600_000

    /// `dscb.<generation>.<expires-ms>.<nonce>.<hmac>`: bound to the subscription and one wake generation.
    public func callbackToken(for key: SubscriptionKey, generation: UInt64, nowMs: Int64) -> String {
        var generator = SystemRandomNumberGenerator()
        let nonce = Hex.encode((0..<8).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        let body = "dscb.\(generation).\(nowMs + Self.tokenLifetimeMs).\(nonce)"
        return body + "." + Hex.encode(Array(mac(body, key)))
    }

    /// The generation a token was issued for. Throws `.tokenInvalid` for a token not issued by this hub for this
    /// subscription (compared in constant time), `.tokenExpired` past its lifetime.
    public func verifyCallbackToken(_ token: String, for key: SubscriptionKey, nowMs: Int64) throws(SubscriptionError) -> UInt64 {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 200, parts.count == 5, parts[0] == "dscb", let generation = UInt64(parts[1]), let expires = Int64(parts[2]),
              let code = Hex.decode(parts[4]) else { throw .tokenInvalid }
        let body = parts[0...3].joined(separator: ".")
        guard HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: Array(Self.macInput(body, key).utf8), using: tokenKey) else {
            throw .tokenInvalid
        }
        guard nowMs < expires else { throw .tokenExpired }
        return generation
    }

    private func mac(_ body: String, _ key: SubscriptionKey) -> HashedAuthenticationCode<SHA256> {
        HMAC<SHA256>.authenticationCode(for: Array(Self.macInput(body, key).utf8), using: tokenKey)
    }

    private static func macInput(_ body: String, _ key: SubscriptionKey) -> String { "\(key.namespace)\u{1}\(key.id)\u{1}\(body)" }
}
