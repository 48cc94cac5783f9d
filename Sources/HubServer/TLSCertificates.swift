import NIOConcurrencyHelpers
import NIOSSL

/// The TLS listener's certificate and key, loaded from PEM files and swapped on reload (SIGHUP): connections
/// accepted after a reload use the new certificate; open ones keep theirs.
final class TLSCertificates: Sendable {
    let certificatePath: String
    let keyPath: String
    private let context: NIOLockedValueBox<NIOSSLContext>

    /// Loads both files now; a bad file is a configuration error (exit 78), not a half-working listener.
    init(certificate: String, key: String) throws(ConfigurationError) {
        certificatePath = certificate
        keyPath = key
        context = NIOLockedValueBox(try Self.load(certificate: certificate, key: key))
    }

    var current: NIOSSLContext { context.withLockedValue { $0 } }

    /// Re-reads the files; on failure the running certificate stays and the error says why.
    func reload() throws(ConfigurationError) {
        let fresh = try Self.load(certificate: certificatePath, key: keyPath)
        context.withLockedValue { $0 = fresh }
    }

    private static func load(certificate: String, key: String) throws(ConfigurationError) -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw ConfigurationError("tls-cert \(certificate): no certificate in the file") }
            let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain,
                                                                         privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            return try NIOSSLContext(configuration: configuration)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("cannot load TLS certificate \(certificate) / key \(key): \(error)")
        }
    }
}
