import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/console/`: the web console's static files. Public (the files hold no data; the console signs in with a token
/// and uses the admin API like any client), revalidated by ETag on every load so an upgrade shows at once, gzip
/// when the browser takes it, and a strict Content-Security-Policy: the console runs only its own scripts.
struct ConsoleController: Sendable {
    let assets: ConsoleAssets

    static let securityHeaders: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
    ]

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/") { _, _ in Self.redirect("/console/") }
        // The router treats /console and /console/ alike; the page's relative links need the slash.
        router.get("/console") { request, _ in
            request.uri.path.hasSuffix("/") ? try serve("index.html", request) : Self.redirect("/console/")
        }
        router.get("/console/**") { request, context in try serve(context.parameters.getCatchAll().joined(separator: "/"), request) }
    }

    private func serve(_ path: String, _ request: Request) throws -> Response {
        guard assets.directory != nil else {
            throw HubProblem(status: .notFound, code: "console-unavailable",
                             detail: "This hub serves no console: its files are not installed, or --web-dir is empty.")
        }
        guard let asset = assets.files[path] else {
            throw HubProblem(status: .notFound, code: "not-found", detail: "The console has no file \(path).")
        }
        var headers: HTTPFields = [.contentType: asset.contentType, .eTag: asset.etag, .cacheControl: "no-cache", .vary: "Accept-Encoding"]
        for (name, value) in Self.securityHeaders { headers[name] = value }
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == asset.etag }) {
            return Response(status: .notModified, headers: headers)
        }
        if let gzipped = asset.gzipped, request.headers[.acceptEncoding]?.contains("gzip") == true {
            headers[.contentEncoding] = "gzip"
            headers[.contentLength] = String(gzipped.readableBytes)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: gzipped))
        }
        headers[.contentLength] = String(asset.body.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }

    private static func redirect(_ location: String) -> Response {
        Response(status: .found, headers: [.location: location, .cacheControl: "no-cache"])
    }
}
