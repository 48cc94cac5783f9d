import NIOCore

/// A connection's outlet for bytes already framed for the wire (`WireFraming`), installed just above the socket (and
/// TLS), below the HTTP and WebSocket handlers.
///
/// The tail push encodes and frames a batch once and writes the same buffer to every parked reader here. Written at
/// the channel's tail instead, each reader's copy would travel the whole pipeline — the router's handlers, the HTTP
/// or WebSocket encoder framing it again, a boxed part per hop — which a profile of 1000 SSE readers showed as a third
/// of the server's own CPU per delivery. Whatever the encoders above write passes through untouched.
public final class WireOutlet: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = IOData
    public typealias OutboundOut = IOData

    public init() {}

    /// The outlet's context on `channel`; call on the channel's event loop. Nil when the pipeline has none (it is
    /// installed on every connection `HTTPServerService` accepts) or the channel is gone.
    static func context(of channel: any Channel) -> ChannelHandlerContext? {
        try? channel.pipeline.syncOperations.context(handlerType: WireOutlet.self)
    }
}

@available(*, unavailable)
extension WireOutlet: Sendable {}
