import HTTPTypes
import HubAuth
import HubCore
import HubProtocol
import Hummingbird
import Logging
import NIOCore

/// Renders every error as problem+json. Store and driver failures are logged here with the request id and
/// answered without detail (the cause stays in the log).
struct ProblemMiddleware: RouterMiddleware {
    let metrics: HubMetrics

    func handle(_ request: Request, context: HubRequestContext,
                next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if let auth = error as? AuthError { metrics.recordAuthFailure(auth) }
            return Self.problem(for: error, logger: context.logger).response(instance: request.uri.path)
        }
    }

    static func problem(for error: any Error, logger: Logger) -> HubProblem {
        switch error {
        case let problem as HubProblem:
            return problem
        case let error as StoreError:
            switch error {
            case .backend(let cause), .unavailable(let cause): logger.error("store failure", metadata: ["cause": "\(cause)"])
            case .schemaTooNew, .capacityExhausted: logger.error("store failure", metadata: ["cause": "\(error)"])
            default: break
            }
            return HubProblem(error)
        case let error as ProtocolError:
            return HubProblem(error)
        case let error as AuthError:
            return HubProblem(error)
        case let error as SubscriptionError:
            return HubProblem(error)
        case is NIOTooManyBytesError:
            return HubProblem(status: .contentTooLarge, code: "payload-too-large", detail: "The request body is larger than this server accepts.")
        case let error as any HTTPResponseError:
            switch error.status {
            case .notFound: return HubProblem(status: .notFound, code: "not-found", detail: "No such resource.")
            case .methodNotAllowed: return HubProblem(status: .methodNotAllowed, code: "method-not-allowed")
            default: return HubProblem(status: error.status, code: "http-\(error.status.code)")
            }
        default:
            logger.error("unhandled error", metadata: ["error": "\(error)"])
            return HubProblem(status: .internalServerError, code: "internal")
        }
    }
}
