import HTTPTypes
import NIOCore

/// The hot path's own HTTP/1.1 reader, on the bytes just above the socket (and TLS), below NIO's HTTP decoder:
///
///     socket ─ WireOutlet ─ HotLane ─ HTTP/1 codec ─ … ─ HotPathHandler ─ Hummingbird
///
/// A profile of 1000 long-pollers showed a fifth of the server's CPU in what every request pays before and after the
/// hot path decides anything: llhttp's callbacks, NIO's request head, its conversion to HTTPTypes, four handlers'
/// boxed parts each way, and the response encoder. So the lane reads each request's head itself (`HTTP1Wire`), and
/// when the connection is quiet (`HotPathHandler.isQuiet`) offers the request to the hot path, which answers with
/// bytes written here. Everything else goes up to the decoder as the exact bytes that came in, one whole request at
/// a time, so the decoder always starts at a request boundary:
/// - requests the hot path does not take (the general router's, or a live read that cannot join its push group now);
/// - everything while the hot path is busy with a request that came through the decoder (it keeps their order);
/// - the first request on a connection (the HTTP pipeline, with the hot path, is set up only after it: it may be an
///   upgrade);
/// - and, for the rest of the connection, anything the lane does not read (`HTTP1Wire.Scan.undelimited`).
///
/// Requests the lane answers never reach the decoder, the response encoder or Hummingbird's connection state; their
/// bookkeeping (the encoder's queue of request methods, the count of requests in progress) stays consistent because
/// none of them sees the request or its response. Graceful shutdown still waits for it: the quiesce event is held here
/// until its response is written.
final class HotLane: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// The largest request body the lane collects itself; larger ones stream through the decoder.
    static let maxBodyBytes = 64 * 1024

    private enum Mode {
        /// At a request boundary: `buffer` holds the start of the next request.
        case scanning
        /// Passing the rest of a request's body (this many bytes) to the decoder.
        case forwarding(Int)
        /// The decoder reads everything from here on.
        case passThrough
    }

    private static let empty = ByteBuffer()
    private var mode = Mode.scanning
    private var buffer = HotLane.empty
    /// The connection's hot path, once the first request set up the HTTP pipeline (`HotPathHandler.handlerAdded`).
    var hotPath: HotPathHandler?
    private var context: ChannelHandlerContext?
    /// The request the hot path is answering from the lane: a copy of a live read's bytes, to hand it to the decoder
    /// if the push cannot take it after all; empty for an append (which is always answered here).
    private var taken: ByteBuffer?
    /// Set while `drain` runs, so that the hot path's calls back into the lane from inside it do not drain again.
    private var draining = false
    private var handBackPending = false
    private var readWanted = false
    private var heldQuiesce: Any?
    /// The client ended its input while a request from the lane was being answered: its event waits for the answer
    /// (Hummingbird closes a connection whose input ended and that it sees idle). Reads go on while the hot path
    /// answers a request from the lane (what arrives meanwhile waits here, bounded), so a client's FIN can come first.
    private var inputEnded = false
    /// Something went up to the decoder during the current read: only then does the read's end go up too. A read
    /// the lane answered entirely ends here — the end of every read walking the whole pipeline cost a long-poll
    /// delivery a few percent in retains alone.
    private var forwardedInRead = false

    /// How many bytes the lane's buffer can hold now (what it keeps between reads; for tests).
    var bufferCapacity: Int { buffer.capacity }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        hotPath = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch mode {
        case .passThrough:
            forwardedInRead = true
            context.fireChannelRead(data)
        case .forwarding(let remaining) where buffer.readableBytes == 0 && bytes.readableBytes <= remaining:
            mode = remaining == bytes.readableBytes ? .scanning : .forwarding(remaining - bytes.readableBytes)
            forwardedInRead = true
            context.fireChannelRead(data)
        default:
            if buffer.readableBytes == 0 {
                buffer = bytes  // no copy; and nothing of earlier reads is kept (a buffer only appended to grows for ever)
            } else {
                buffer.writeBuffer(&bytes)
            }
            drain(context: context, inRead: true)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if forwardedInRead { endForwarding(context: context) }
    }

    /// Ends what was handed up to the decoder (the router's request stream takes it at the end of a read).
    private func endForwarding(context: ChannelHandlerContext) {
        forwardedInRead = false
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, holdsRequest {
            heldQuiesce = event  // Hummingbird's connection state does not know of the lane's request: wait for its answer
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            // An open SSE response sees it at once: its reader left.
            if taken != nil, hotPath?.isStreaming != true {
                inputEnded = true
            } else {
                endInput(context: context)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func endInput(context: ChannelHandlerContext) {
        if buffer.readableBytes > 0 {
            // An unfinished request at the client's end of input: the decoder says what is wrong with it.
            mode = .passThrough
            forward(buffer.readSlice(length: buffer.readableBytes)!, context: context)
            endForwarding(context: context)
        }
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    /// Hands on whole requests (or answers them) while the bytes at the front can be delimited.
    private func drain(context: ChannelHandlerContext, inRead: Bool) {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        var forwarded = false
        loop: while buffer.readableBytes > 0, taken == nil {
            switch mode {
            case .passThrough:
                forward(buffer.readSlice(length: buffer.readableBytes)!, context: context)
                forwarded = true
            case .forwarding(let remaining):
                let length = min(remaining, buffer.readableBytes)
                forward(buffer.readSlice(length: length)!, context: context)
                forwarded = true
                mode = length == remaining ? .scanning : .forwarding(remaining - length)
            case .scanning:
                switch HTTP1Wire.scan(buffer) {
                case .incomplete:
                    break loop
                case .undelimited:
                    mode = .passThrough
                case .request(let head):
                    let total = head.headLength + head.contentLength
                    if let request = head.request, let hotPath, hotPath.isQuiet, head.contentLength <= Self.maxBodyBytes {
                        guard buffer.readableBytes >= total else { break loop }  // the rest of the body is on its way
                        let bytes = buffer.readSlice(length: total)!
                        // Its own small copy: a slice would hold the whole read buffer while the poll waits.
                        taken = request.method == .get ? ByteBuffer(buffer: bytes) : Self.empty
                        let body = head.contentLength > 0 ? bytes.getSlice(at: bytes.readerIndex + head.headLength, length: head.contentLength) : nil
                        if hotPath.takeFromLane(request, body: body) {
                            if handBackPending {
                                handBackPending = false
                                forward(taken.take()!, context: context)
                                forwarded = true
                            }
                            continue loop
                        }
                        taken = nil
                        forward(bytes, context: context)
                    } else {
                        let now = min(total, buffer.readableBytes)
                        forward(buffer.readSlice(length: now)!, context: context)
                        if now < total { mode = .forwarding(total - now) }
                    }
                    forwarded = true
                }
            }
        }
        // Nothing of the last read is kept once it is consumed (NIO reuses its read buffer only when nobody holds it).
        if buffer.readableBytes == 0 { buffer = Self.empty }
        // What was handed on reaches the router's request stream at the end of a read; outside one, end it here.
        if forwarded, !inRead { endForwarding(context: context) }
        if inputEnded, taken == nil {
            inputEnded = false
            endInput(context: context)
        }
        if heldQuiesce != nil, !holdsRequest { context.fireUserInboundEventTriggered(heldQuiesce.take()!) }
        if readWanted, buffer.readableBytes < HTTP1Wire.maxHeadBytes + Self.maxBodyBytes {
            readWanted = false
            context.read()
        }
    }

    private func forward(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        forwardedInRead = true
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    // MARK: Calls from the hot path

    /// The request taken from the lane is answered (or its response ended): on to the next.
    func finished() {
        taken = nil
        afterTaken()
    }

    /// The hot path has begun to answer the request it took (an SSE response is open): it cannot hand it back any
    /// more, so the copy kept for that goes (the request is still in progress until `finished`).
    func answerBegun() {
        if taken != nil { taken = Self.empty }
    }

    /// The hot path cannot answer the request it took after all: the decoder reads it, and the router answers.
    func handBack() {
        guard taken != nil else { return }
        if draining {
            handBackPending = true  // `drain` hands it on when the hot path returns
            return
        }
        guard let context else { return }
        forward(taken.take()!, context: context)
        endForwarding(context: context)
        afterTaken()
    }

    private func afterTaken() {
        guard let context else { return }
        drain(context: context, inRead: false)
    }

    /// A request is being answered from the lane, or part of one waits here for the rest.
    private var holdsRequest: Bool {
        if taken != nil { return true }
        if case .scanning = mode { return buffer.readableBytes > 0 }
        return false
    }

    /// Writes bytes framed by the hot path for the request it took.
    func write(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        // Bounded: no more than a request's worth waits here while the hot path answers one from the lane.
        if buffer.readableBytes >= HTTP1Wire.maxHeadBytes + Self.maxBodyBytes {
            readWanted = true
            return
        }
        context.read()
    }
}

@available(*, unavailable)
extension HotLane: Sendable {}
