#if canImport(Glibc)
import Glibc
#endif
import ServiceLifecycle

/// Gives memory that was freed back to the system. glibc keeps freed heap pages for reuse: after 1,000 SSE
/// subscribers left, hubd held ~100 MB resident with 2 MB in use (measured with malloc_stats); `malloc_trim(0)`
/// returns it (to ~44 MB). A trim walks the heaps — milliseconds — so it runs every 30 s.
///
/// Between trims, `free` keeps what it frees: glibc's own trim threshold (128 KiB) returned an event loop's heap top
/// to the system after every append (SQLite's statement journal for the slot counter's `UPDATE … RETURNING` is
/// allocated and freed per statement), one `madvise` and the page faults to map it again per request — a few
/// percent of a publish. The threshold is raised to 64 MiB; the periodic trim still returns everything.
struct MemoryTrimService: Service {
    static let interval: Duration = .seconds(30)
    static let trimThreshold = 64 << 20

    func run() async throws {
        // malloc.h is not part of Swift's Glibc module; the symbols are looked up once (nil on other C libraries).
        if let mallopt = Self.mallopt { _ = mallopt(Self.mTrimThreshold, Int32(Self.trimThreshold)) }
        guard let trim = Self.mallocTrim else { return }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: Self.interval)
                _ = trim(0)
            }
        }
    }

    private typealias MallocTrim = @convention(c) (Int) -> Int32
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    /// `M_TRIM_THRESHOLD` in malloc.h.
    private static let mTrimThreshold: Int32 = -1

    private static var mallopt: Mallopt? {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return nil }  // RTLD_DEFAULT
        return unsafeBitCast(symbol, to: Mallopt.self)
        #else
        return nil
        #endif
    }

    private static var mallocTrim: MallocTrim? {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }  // RTLD_DEFAULT
        return unsafeBitCast(symbol, to: MallocTrim.self)
        #else
        return nil
        #endif
    }
}
