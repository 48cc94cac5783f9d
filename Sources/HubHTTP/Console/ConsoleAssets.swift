import CompressNIO
import Foundation
import NIOCore

/// The web console's files, read once at start: the console is small (under 250 KB), so every file is kept in
/// memory with its gzip form and an ETag, and serving is a dictionary lookup.
public struct ConsoleAssets: Sendable {
    struct Asset: Sendable {
        let body: ByteBuffer
        let gzipped: ByteBuffer?
        let contentType: String
        let etag: String
    }

    let files: [String: Asset]
    /// Where the files came from, for messages; nil when there is no console.
    public let directory: String?

    public static let none = ConsoleAssets(files: [:], directory: nil)

    static let types = ["html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
                        "svg": "image/svg+xml", "png": "image/png", "ico": "image/x-icon", "json": "application/json", "txt": "text/plain; charset=utf-8"]
    /// A console is a handful of small files; anything bigger is a mistake in the directory, not a console.
    static let maxTotalBytes = 4 << 20

    /// Reads every regular file under `directory` (no dot-files, no symlinks out).
    public static func load(directory: String) throws -> ConsoleAssets {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                          options: [.skipsHiddenFiles]) else {
            throw ConsoleError("cannot read the console directory \(directory)")
        }
        var files: [String: Asset] = [:]
        var total = 0
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(root.path + "/") else { continue }
            let relative = String(path.dropFirst(root.path.count + 1))
            let data = try Data(contentsOf: url)
            total += data.count
            guard total <= maxTotalBytes else { throw ConsoleError("the console directory \(directory) holds more than 4 MiB") }
            var body = ByteBuffer(bytes: data)
            let type = types[url.pathExtension.lowercased()] ?? "application/octet-stream"
            var gzipped: ByteBuffer?
            if !type.hasPrefix("image/png"), var copy = Optional(body), let packed = try? copy.compress(with: .gzip()), packed.readableBytes < body.readableBytes {
                gzipped = packed
            }
            body.moveReaderIndex(to: 0)
            files[relative] = Asset(body: body, gzipped: gzipped, contentType: type, etag: "\"\(fnv1a(data))\"")
        }
        guard files["index.html"] != nil else { throw ConsoleError("the console directory \(directory) has no index.html") }
        return ConsoleAssets(files: files, directory: directory)
    }

    /// FNV-1a, 64 bits: a content fingerprint for ETags (not a security boundary).
    static func fnv1a(_ data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }

    /// Total size of the console as served uncompressed.
    public var totalBytes: Int { files.values.reduce(0) { $0 + $1.body.readableBytes } }
}

public struct ConsoleError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
