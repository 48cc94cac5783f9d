import HubCore
@testable import HubHTTP
import NIOCore
import Testing

@Suite("Store errors become problem documents in one place")
struct ProblemMappingTests {
    @Test("a store at one of its fixed bounds answers 507 capacity-exhausted with the store's reason")
    func capacityExhausted() {
        let problem = HubProblem(StoreError.capacityExhausted("this store holds at most 1048575 slots; delete unused slots first"))
        let (headers, body) = problem.rendered(instance: "/v1/stream/over/a")
        #expect(problem.status.code == 507 && problem.status.reasonPhrase == "Insufficient Storage")
        #expect(headers[.contentType] == "application/problem+json")
        #expect(String(buffer: body) == #"{"type":"/docs/api/errors#capacity-exhausted","title":"Insufficient Storage","status":507,"code":"capacity-exhausted","detail":"this store holds at most 1048575 slots; delete unused slots first","instance":"/v1/stream/over/a"}"#)
    }
}
