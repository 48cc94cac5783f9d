import FoundationEssentials

extension Subscription {
    /// The stored form: one JSON document per subscription (both stores keep it in a text column).
    public var document: String {
        // Encoding plain value types into JSON cannot fail.
        String(decoding: (try? Self.encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    public init(document: String) throws(StoreError) {
        do {
            self = try JSONDecoder().decode(Subscription.self, from: Data(document.utf8))
        } catch {
            throw .backend("corrupt subscription record: \(error)")
        }
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}
