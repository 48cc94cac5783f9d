import Foundation
import HubTestSupport
import Testing

@Suite("TLS listener")
struct TLSTests {
    /// A self-signed certificate for localhost with the given common name, made with the openssl CLI.
    func makeCertificate(in directory: String, commonName: String) async throws -> (cert: String, key: String) {
        let cert = directory + "/cert-\(commonName).pem", key = directory + "/key-\(commonName).pem"
        let (status, output) = try await run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                                                   "-days", "1", "-subj", "/CN=\(commonName)", "-addext", "subjectAltName=DNS:localhost"])
        guard status == 0 else { throw TestFailure("openssl: \(output)") }
        return (cert, key)
    }

    /// The subject of the certificate a TLS server presents.
    func servedSubject(port: Int) async throws -> String {
        let (_, output) = try await run("/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -subject"])
        return output
    }

    @Test("serves HTTPS with the configured certificate, reloads a renewed one on SIGHUP, refuses a bad one at start")
    func tls() async throws {
        let directory = try TemporaryDirectory()
        let first = try await makeCertificate(in: directory.path, commonName: "first")
        let second = try await makeCertificate(in: directory.path, commonName: "second")
        let cert = directory.path + "/cert.pem", key = directory.path + "/key.pem"
        try FileManager.default.copyItem(atPath: first.cert, toPath: cert)
        try FileManager.default.copyItem(atPath: first.key, toPath: key)
        let port = try freePort()
        let notify = try NotifySocket(directory: directory.path)
        let hubd = try await HubdProcess(dataDirectory: directory.path + "/data",
                                         arguments: ["--auth", "open", "--tls-listen", "127.0.0.1:\(port)", "--tls-cert", cert, "--tls-key", key],
                                         environment: ["NOTIFY_SOCKET": notify.path])
        _ = try await notify.next(containing: "READY=1")
        let (status, body) = try await run("/usr/bin/curl", ["-sk", "https://127.0.0.1:\(port)/healthz"])
        #expect(status == 0 && body.contains(#""status":"ok""#), "\(body)")
        #expect(try await servedSubject(port: port).contains("CN = first"))

        try FileManager.default.removeItem(atPath: cert)
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: second.cert, toPath: cert)
        try FileManager.default.copyItem(atPath: second.key, toPath: key)
        hubd.signal(SIGHUP)
        let reloaded = try await notify.next(containing: "READY=1")
        #expect(reloaded.joined().contains("configuration reloaded"))
        #expect(try await servedSubject(port: port).contains("CN = second"), "new connections get the renewed certificate")
        #expect(await hubd.terminate() == 0)

        // Port 0 and no admin socket: if the check ever regressed, this hubd must not squat on a real port.
        let (badStatus, badOutput) = try await run(HubdProcess.binary, ["--data-dir", directory.path + "/bad", "--listen", "127.0.0.1:0",
                                                                        "--admin-socket", "", "--tls-listen", "127.0.0.1:0",
                                                                        "--tls-cert", directory.path + "/missing.pem", "--tls-key", key])
        #expect(badStatus == 78, "\(badOutput)")
        let (halfStatus, _) = try await run(HubdProcess.binary, ["--check-config", "--tls-cert", cert])
        #expect(halfStatus == 78, "tls-cert without tls-listen and tls-key is refused")
    }

    @Test("SSE readers parked at the tail get their pushed, pre-framed batches through TLS")
    func pushOverTLS() async throws {
        let directory = try TemporaryDirectory()
        let (cert, key) = try await makeCertificate(in: directory.path, commonName: "push")
        let port = try freePort()
        try await withRunningHub({ $0.tlsListen = ("127.0.0.1", port); $0.tlsCertificate = cert; $0.tlsKey = key }) { hub in
            let p = uniqueStream()
            _ = try await hub.put(p, [jsonType], body: "[1]")
            // curl reads the whole SSE response; the close appended below ends it.
            async let sse = run("/usr/bin/curl", ["-skN", "--max-time", "60", "https://127.0.0.1:\(port)/v1/stream/\(p)?offset=-1&live=sse"])
            try await hub.untilWaiting(1)
            _ = try await hub.post(p, [jsonType], body: "[2,3]")
            _ = try await hub.post(p, [("Stream-Closed", "true")])
            let (status, body) = try await sse
            #expect(status == 0, "\(body)")
            let data = body.components(separatedBy: "\n").filter { $0.hasPrefix("data:[") }
            #expect(data == ["data:[1]", "data:[2,3]"], "\(body)")
            #expect(body.contains(#""streamClosed":true"#), "\(body)")
        }
    }
}
