import HTTPTypes
import HubCore
import HubProtocol
import Logging
import NIOCore
import NIOHTTPTypes

/// What the hot path needs, built once per listener (`Hub.build`) and shared by every connection's handler (a class:
/// inline in each handler, its router, limits and logger were ~400 bytes of every idle connection).
public final class HotPath: Sendable {
    public let router: HotPathRouter
    let limits: HTTPLimits
    let metrics: HubMetrics
    let logger: Logger
    let commonFields = CommonResponseFields()

    public init(router: HotPathRouter, limits: HTTPLimits, metrics: HubMetrics, logger: Logger) {
        self.router = router; self.limits = limits; self.metrics = metrics; self.logger = logger
    }

    /// A new handler for one connection.
    /// - Parameter routerNeeded: succeeds with true when the first request goes to the router, with false when the
    ///   connection ends before any did; the connection's router loop waits for it.
    public func handler(routerNeeded: EventLoopPromise<Bool>? = nil) -> HotPathHandler {
        HotPathHandler(self, routerNeeded: routerNeeded)
    }

    /// Adds the connection's hot lane (`HotLane`): call where its HTTP/1 decoder will sit, above the socket (and TLS).
    public func addLane(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(HotLane())
    }
}

/// The hot path on one HTTP/1.1 connection, between Hummingbird's HTTP codec and its request channel:
///
///     socket ─ HTTP/1 codec ─ HTTP1ToHTTPServerCodec ─ HTTPConnectionStateHandler ─ HotPathHandler ─ Hummingbird
///
/// For each request head, `HotPathRouter` decides. A general request passes through untouched; a hot one is
/// answered here. An append: the body is aggregated (bounded by `maxBodyBytes`), the append is submitted to the store
/// with this event loop, and the store's completion — run on this loop after the commit, batched with the loop's
/// other completions of that commit — writes the response. A long-poll: it joins its stream's push group when the
/// group is at its offset, and the group's next batch (or its timeout) is answered on this loop; when there is no such
/// group the request goes to the router after all, which reads and parks it there. An SSE read at the tail: the
/// head and the first control event are written here and the connection joins the group as a streaming member, whose
/// batches the group writes below the HTTP encoder; the response ends here (the stream closed, its maximum duration,
/// shutdown). No Swift task in any of these: an idle SSE reader is its channel and a parked entry. Only when the push
/// lets an SSE reader go (its socket fell behind, a read failed) does a task follow the stream for it, as the
/// router's would (`StreamReads.followSSE`).
///
/// Responses leave in request order even when a client pipelines: while a request handed to the router has not
/// been answered, later requests go to the router too; while a hot request waits for its commit, later parts are
/// held (and reads paused) until it is answered.
public final class HotPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// A hot request being read.
    private struct Collecting {
        let request: HTTPRequest
        let path: StreamPath
        let tokenID: String
        var body: ByteBuffer?
    }

    /// A hot live read's head, waiting for its end.
    private struct Polling {
        let request: HTTPRequest
        let poll: HotPathRouter.LiveRead
        let tokenID: String
    }

    /// A hot SSE response that is open. It keeps what its end needs, not the request: the parsed head and its
    /// header strings were ~1.2 KiB of each idle SSE connection (heaptrack).
    private struct Streaming {
        let path: StreamPath
        /// The request's path without its query (a problem document's `instance`).
        let instance: String
        /// The client asked for the connection to close after this response.
        let closes: Bool
        /// The request, with when it began, only while requests are logged (debug).
        let logged: (request: HTTPRequest, tokenID: String, started: ContinuousClock.Instant)?
        /// The stream's id (its change key) and when the response ends at the latest.
        let stream: Int64
        let deadline: ContinuousClock.Instant
        let cursorFloor: Int64
        /// On the push path; or a task that follows the stream after the push let the reader go.
        var member: TailPush<StreamTailFeed>.Subscriber?
        var follower: Task<Void, Never>?
    }

    private enum State {
        case idle
        /// A health check's head, waiting for its end.
        case health(HTTPRequest, tokenID: String)
        /// The current request's parts go to the router.
        case general
        case collecting(Collecting)
        case polling(Polling)
        /// A hot request is complete and waits for its commit (or a long-poll for its batch).
        case answering
        /// A hot SSE response is open (`streaming`): input is still read, to see the client leave.
        case streaming
        /// A response that closes the connection was written; nothing more is read.
        case closing
    }

    private let hot: HotPath
    /// How long a connection refused mid-body may keep sending before it is closed.
    static let lingerGrace = TimeAmount.seconds(2)
    private var state = State.idle
    /// Requests handed to the router whose response has not ended yet.
    private var routerPending = 0
    /// Parts a pipelining client sent while a hot request was being answered.
    private var held = CircularBuffer<HTTPRequestPart>(initialCapacity: 1)  // rarely used: the default 16 slots are ~2 KiB per idle connection
    private var readWanted = false
    /// The router streams an open-ended response (SSE) on this connection: a client that closes its side has left
    /// for good, so the connection closes and the stream ends at once rather than at its next failed write.
    private var endsStreamOnInputClose = false
    private var inputClosed = false
    /// The open hot SSE response, while `state` is `.streaming`.
    private var streaming: Streaming?
    /// The connection's byte-level reader, when it has one.
    private var lane: HotLane?
    /// The current hot request came from the lane: its response is written as bytes there, below the HTTP encoder.
    private var viaLane = false
    private var context: ChannelHandlerContext?

    /// Completed with true when a request first goes to the router (whose request loop waits for it), false if the
    /// connection ends first.
    private var routerNeeded: EventLoopPromise<Bool>?

    init(_ hot: HotPath, routerNeeded: EventLoopPromise<Bool>? = nil) {
        self.hot = hot
        self.routerNeeded = routerNeeded
    }

    /// Before a request goes to the router: its request loop starts.
    private func routerStarts() {
        routerNeeded?.succeed(true)
        routerNeeded = nil
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lane = try? context.pipeline.syncOperations.handler(type: HotLane.self)
        lane?.hotPath = self
    }

    // MARK: From the lane

    /// A hot SSE response is open.
    var isStreaming: Bool {
        if case .streaming = state { true } else { false }
    }

    /// Nothing is being read or answered on the connection: a request the lane read may be answered here.
    var isQuiet: Bool {
        if case .idle = state, routerPending == 0, held.isEmpty { true } else { false }
    }

    /// Takes a request the lane read (whole, with its body) when it is the hot path's; false when it is not (the lane
    /// hands it to the decoder).
    func takeFromLane(_ request: HTTPRequest, body: ByteBuffer?) -> Bool {
        guard let context else { return false }
        let route = hot.router.route(request, remoteAddress: context.channel.remoteAddress?.ipAddress)
        if case .general = route { return false }
        viaLane = true
        hot.metrics.hotLaneRequest()
        begin(request, route, context: context)
        if let body { handle(.body(body), context: context) }
        handle(.end(nil), context: context)
        return true
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .answering, .streaming:
            held.append(part)
            return
        case .closing:
            return
        default:
            handle(part, context: context)
        }
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let request)):
            let route = routerPending > 0 ? .general
                : hot.router.route(request, remoteAddress: context.channel.remoteAddress?.ipAddress)
            begin(request, route, context: context)
        case (.general, .end):
            state = .idle
            context.fireChannelRead(wrapInboundOut(part))
        case (.general, _):
            context.fireChannelRead(wrapInboundOut(part))
        case (.collecting(var collecting), .body(var chunk)):
            guard (collecting.body?.readableBytes ?? 0) + chunk.readableBytes <= hot.limits.maxBodyBytes else {
                // Nothing of an oversized body is stored; the rest of it is not read.
                return fail(NIOTooManyBytesError(maxBytes: hot.limits.maxBodyBytes), request: collecting.request, close: true, context: context)
            }
            if collecting.body == nil {
                collecting.body = chunk
            } else {
                collecting.body!.writeBuffer(&chunk)
            }
            state = .collecting(collecting)
        case (.collecting(let collecting), .end):
            state = .answering
            append(collecting, context: context)
        case (.health(let request, let tokenID), .end):
            state = .answering
            let started = hot.logger.logLevel <= .debug ? ContinuousClock.now : nil
            respond(.ok, HealthController.okFields, body: HealthController.okBody, to: request, context: context)
            if let started { logRequest(request, tokenID: tokenID, since: started) }
        case (.polling(let polling), .end):
            state = .answering
            switch polling.poll.mode {
            case .longPoll: longPoll(polling, context: context)
            case .sse: sse(polling, context: context)
            }
        default:
            // The codec delivers head, body…, end; anything else is a bug upstream. Close rather than guess.
            hot.logger.error("hot path: unexpected request part", metadata: ["state": "\(state)"])
            state = .closing
            context.close(promise: nil)
        }
    }

    private func begin(_ request: HTTPRequest, _ route: HotPathRouter.Route, context: ChannelHandlerContext) {
        switch route {
        case .general:
            state = .general
            routerPending += 1
            routerStarts()
            context.fireChannelRead(wrapInboundOut(.head(request)))
        case .streamAppend(let path, let tokenID):
            state = .collecting(Collecting(request: request, path: path, tokenID: tokenID))
        case .streamLiveRead(let poll, let tokenID):
            state = .polling(Polling(request: request, poll: poll, tokenID: tokenID))
        case .health(let tokenID):
            state = .health(request, tokenID: tokenID)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            if case .closing = state {
                context.close(promise: nil)  // the client finished sending what we discard
                return
            }
            if endsStreamOnInputClose { context.close(promise: nil) }
            if case .streaming = state { context.close(promise: nil) }  // an SSE reader that leaves has left for good
            closeIfAbandoned(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A client that ended its input on a connection the router never served, with nothing left to answer: closed
    /// here, as the router's request loop would (it never started).
    private func closeIfAbandoned(context: ChannelHandlerContext) {
        guard inputClosed, routerNeeded != nil, routerPending == 0, held.isEmpty, case .idle = state else { return }
        state = .closing
        context.close(promise: nil)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        routerNeeded?.succeed(false)
        routerNeeded = nil
        lane?.hotPath = nil
        lane = nil
        self.context = nil
        // Off the push path at once, rather than at the next batch or keep-alive that fails to go out. Here rather
        // than in `channelInactive`, which Hummingbird's `HTTPConnectionStateHandler` (ahead of us) does not pass on;
        // a closed channel's handlers are all removed.
        if let streaming {
            if let member = streaming.member { hot.router.reads?.push.leave(streaming.path, member) }
            streaming.follower?.cancel()
        }
        if let (path, member) = pollMember { hot.router.reads?.push.leave(path, member) }
    }

    /// Marks the router's current response on `channel` as an open-ended stream that ends when the client closes its
    /// side (what Hummingbird's `consumeWithCancellationOnInboundClose` does with three tasks per response, which an
    /// idle SSE connection would hold: 25 KiB each). Without a hot path on the connection, the stream ends at its next
    /// write after the client left (a batch or a keep-alive).
    public static func endStreamOnInputClose(_ channel: any Channel) {
        channel.eventLoop.execute {
            guard let handler = try? channel.pipeline.syncOperations.handler(type: HotPathHandler.self) else { return }
            handler.endsStreamOnInputClose = true
            if handler.inputClosed { channel.close(promise: nil) }
        }
    }

    public func read(context: ChannelHandlerContext) {
        switch state {
        case .answering where viaLane:
            context.read()  // the lane holds what comes meanwhile (bounded), and the socket stays registered for reads
        case .answering:
            readWanted = true  // no more input until this request is answered: bounded memory, ordered answers
        case .streaming where !held.isEmpty:
            readWanted = true  // a client that pipelines behind its SSE request waits for the stream's end
        default:
            context.read()  // closing included: a refused body's rest is read and discarded
        }
    }

    // MARK: Outbound (the router's responses)

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            routerPending -= 1
            endsStreamOnInputClose = false
        }
        context.write(data, promise: promise)
    }

    // MARK: The append

    private func append(_ collecting: Collecting, context: ChannelHandlerContext) {
        let request: AppendRequest
        do {
            request = try StreamAppend.request(collecting.request.headerFields, body: collecting.body ?? ByteBuffer())
        } catch {
            return fail(error, request: collecting.request, close: false, context: context)
        }
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let started = hot.logger.logLevel <= .debug ? ContinuousClock.now : nil
        hot.router.appender!.submitAppend(collecting.path, request, on: context.eventLoop) { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let outcome):
                let answer = StreamAppend.answer(outcome, to: request, metrics: handler.hot.metrics)
                handler.respond(answer.status, answer.fields, body: nil, to: collecting.request, context: context)
            case .failure(let error):
                handler.fail(error, request: collecting.request, close: false, context: context)
            }
            if let started { handler.logRequest(collecting.request, tokenID: collecting.tokenID, since: started) }
        }
    }

    // MARK: The long-poll

    private func longPoll(_ polling: Polling, context: ChannelHandlerContext) {
        guard let reads = hot.router.reads else { return handOff(polling.request, context: context) }
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let started = hot.logger.logLevel <= .debug ? ContinuousClock.now : nil
        let joined = reads.push.joinAtTail(polling.poll.path, after: polling.poll.from.position, channel: context.channel,
                                           deadline: .now + hot.limits.longPollTimeout) { outcome in
            let answer: @Sendable () -> Void = {
                let (handler, context) = loopBound.value
                handler.answer(polling, outcome, context: context)
                if let started { handler.logRequest(polling.request, tokenID: polling.tokenID, since: started) }
            }
            // A batch comes from the push's own job on this loop, a job of its own (nothing of this handler is on
            // the stack): answered right there, one loop hop less per poll. Anything else (the timer wheel, the
            // dispatcher, shutdown, the connection leaving) comes from elsewhere or from inside this handler: queued.
            if case .answered = outcome, loop.inEventLoop { answer() } else { loop.execute(answer) }
        }
        guard let joined else {
            // Back one batch late (the group moved on while this poll's answer travelled): that batch is the answer.
            if let batch = reads.push.lastBatch(polling.poll.path, after: polling.poll.from.position) {
                answer(polling, from: batch, cursor: reads.cursor(client: polling.poll.clientCursor), context: context)
                if let started { logRequest(polling.request, tokenID: polling.tokenID, since: started) }
                return
            }
            return handOff(polling.request, context: context)
        }
        pollTail = joined.tail
        pollMember = (polling.poll.path, joined.member)
        hot.metrics.longPollWaitStarted()
    }

    /// The group's newest read at the poll's offset, for a poll that times out.
    private var pollTail: SharedRead?
    /// The poll's place in its group, while it waits.
    private var pollMember: (StreamPath, TailPush<StreamTailFeed>.Subscriber)?

    private func answer(_ polling: Polling, _ outcome: TailPush<StreamTailFeed>.Release, context: ChannelHandlerContext) {
        hot.metrics.longPollWaitEnded()
        let tail = pollTail
        pollTail = nil
        pollMember = nil
        guard context.channel.isActive, let reads = hot.router.reads, let tail else { return }
        let cursor = reads.cursor(client: polling.poll.clientCursor)
        let answer: StreamReads.Answer
        switch outcome {
        case .answered(let batch):
            return self.answer(polling, from: batch, cursor: cursor, context: context)
        case .expired, .shuttingDown, .ended:
            answer = StreamReads.timeoutAnswer(tail, from: polling.poll.from, cursor: cursor)
        case .behind:
            // The group could not answer (a read failed, another incarnation of the path): the router reads for itself.
            return handOff(polling.request, context: context)
        case .cancelled:
            return
        }
        respond(answer.status, answer.fields, body: answer.body, to: polling.request, context: context)
    }

    /// Answers a poll with a batch read after its offset: a batch answers every poller at that offset (the push's,
    /// and those back one batch late) with the same bytes but for their cursors, so through the lane they are
    /// encoded once per batch.
    private func answer(_ polling: Polling, from batch: SharedRead, cursor: String, context: ChannelHandlerContext) {
        guard viaLane, let lane else {
            let answer = StreamReads.longPollAnswer(batch, from: polling.poll.from, cursor: cursor)
            return respond(answer.status, answer.fields, body: answer.body, to: polling.request, context: context)
        }
        let request = polling.request
        let close = Self.asksToClose(request)
        let common = hot.commonFields.encoded(for: request.method)
        let key = SharedRead.AnswerKey(from: polling.poll.from, method: request.method, close: close, common: common)
        let encoded = batch.answer(for: key) {
            let answer = StreamReads.longPollAnswer(batch, from: polling.poll.from, cursor: cursor)
            var fields = Self.ownFields(answer.fields, contentLength: answer.status == .noContent ? nil : answer.body?.readableBytes ?? 0,
                                        close: close)
            let carriesCursor = fields[.streamCursor] != nil
            fields[.streamCursor] = nil
            var head = ByteBuffer()
            HTTP1Wire.writeResponseHeadOpen(answer.status, fields, common: common, into: &head)
            return SharedRead.EncodedAnswer(status: answer.status, openHead: head, carriesCursor: carriesCursor, body: answer.body)
        }
        var bytes = ByteBuffer()
        bytes.reserveCapacity(encoded.openHead.readableBytes + 64 + (encoded.body?.readableBytes ?? 0))
        bytes.writeImmutableBuffer(encoded.openHead)
        if encoded.carriesCursor {
            bytes.writeStaticString("Stream-Cursor: ")
            bytes.writeString(cursor)
            bytes.writeStaticString("\r\n")
        }
        bytes.writeStaticString("\r\n")
        if let body = encoded.body { bytes.writeImmutableBuffer(body) }
        hot.metrics.recordResponse(status: Int(encoded.status.code), hotPath: true)
        lane.write(bytes, promise: nil)
        responded(close: close, forceClose: false, context: context)
    }

    // MARK: SSE at the tail

    private func sse(_ polling: Polling, context: ChannelHandlerContext) {
        guard let reads = hot.router.reads else { return handOff(polling.request, context: context) }
        let cursorFloor = Int64(reads.cursor(client: polling.poll.clientCursor)) ?? 0
        // A client cursor ahead of the shared control events' needs its own: the router's.
        guard StreamReads.sharesPushes(cursorFloor: cursorFloor, reads.cursors) else { return handOff(polling.request, context: context) }
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let deadline = ContinuousClock.now + hot.limits.sseMaxDuration
        let joined = reads.push.joinAtTail(polling.poll.path, after: polling.poll.from.position, channel: context.channel,
                                           delivery: .stream(.sse), deadline: deadline) { outcome in
            loop.execute {
                let (handler, context) = loopBound.value
                handler.released(outcome, context: context)
            }
        }
        guard let joined else { return handOff(polling.request, context: context) }
        state = .streaming
        let request = polling.request
        streaming = Streaming(path: polling.poll.path, instance: Self.pathOnly(request.path ?? ""),
                              closes: Self.asksToClose(request),
                              logged: hot.logger.logLevel <= .debug ? (request, polling.tokenID, .now) : nil,
                              stream: joined.tail.result.info.id, deadline: deadline, cursorFloor: cursorFloor, member: joined.member)
        hot.metrics.sseStarted()
        hot.metrics.recordResponse(status: 200, hotPath: true)
        // Through the HTTP encoder, which frames the response as chunked; the group's batches (already chunks) follow
        // below it, and the encoder writes the last chunk when the response ends here. The group's jobs for this
        // channel run after this one.
        let fields = StreamReads.sseFields(joined.tail.result.info.contentType)
        let first = StreamReads.sseTailChunk(at: polling.poll.from, cursor: StreamReads.sseCursor(reads.cursors, floor: cursorFloor))
        if viaLane, let lane {
            var bytes = ByteBuffer()
            laneResponseHead(.ok, fields, to: polling.request, contentLength: nil, into: &bytes)
            var chunk = WireFraming.httpChunk(first)
            bytes.writeBuffer(&chunk)
            lane.write(bytes, promise: nil)
            lane.answerBegun()
        } else {
            let head = responseHead(.ok, fields, to: polling.request, contentLength: nil)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(first)), promise: nil)
        }
        if readWanted, held.isEmpty {
            readWanted = false
            context.read()
        }
    }

    /// The push let the SSE reader go.
    private func released(_ outcome: TailPush<StreamTailFeed>.Release, context: ChannelHandlerContext) {
        guard case .streaming = state, var open = streaming else { return }
        open.member = nil
        switch outcome {
        case .behind(let cursor) where context.channel.isActive:
            // Its socket fell behind, or a read failed: a task reads on for it, as the router's would.
            open.follower = follow(open, after: Offset(cursor), context: context)
            streaming = open
        default:
            // The close was pushed, the deadline passed, shutdown, or the connection closed (then only the gauge
            // and the log change: `endStream` writes nothing to a closed channel).
            streaming = open
            endStream(context: context)
        }
    }

    private func follow(_ open: Streaming, after cursor: Offset, context: ChannelHandlerContext) -> Task<Void, Never>? {
        guard let reads = hot.router.reads else { return nil }
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let loop = context.eventLoop, channel = context.channel
        let path = open.path, stream = open.stream, deadline = open.deadline, cursorFloor = open.cursorFloor
        let instance = open.instance
        // A chunk through the HTTP encoder, taken when the socket took it (the router's body writer waits the same way).
        let write: @Sendable (ByteBuffer) async throws -> Void = { chunk in
            try await loop.flatSubmit { () -> EventLoopFuture<Void> in
                let (handler, context) = loopBound.value
                guard case .streaming = handler.state, context.channel.isActive else {
                    return loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                let promise = loop.makePromise(of: Void.self)
                if handler.viaLane, let lane = handler.lane {
                    lane.write(WireFraming.httpChunk(chunk), promise: promise)
                } else {
                    context.writeAndFlush(handler.wrapOutboundOut(.body(chunk)), promise: promise)
                }
                return promise.futureResult
            }.get()
        }
        let end: @Sendable () -> Void = {
            loop.execute {
                let (handler, context) = loopBound.value
                handler.endStream(context: context)
            }
        }
        return Task {
            try? await reads.followSSE(path, stream: stream, first: nil, after: cursor, until: deadline, cursorFloor: cursorFloor,
                                       instance: instance, channel: channel, write: write)
            end()
        }
    }

    /// Ends the open SSE response: the last chunk (the connection stays open for the next request), unless the
    /// connection is gone.
    private func endStream(context: ChannelHandlerContext) {
        guard case .streaming = state, let open = streaming else { return }
        streaming = nil
        hot.metrics.sseEnded()
        if let logged = open.logged { logRequest(logged.request, tokenID: logged.tokenID, since: logged.started) }
        guard context.channel.isActive else {
            state = .closing
            return
        }
        if viaLane, let lane {
            lane.write(ByteBuffer(string: HTTP1Wire.lastChunk), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        if open.closes || inputClosed {
            state = .closing
            held.removeAll()
            context.close(promise: nil)
            finishLaneRequest()
            return
        }
        state = .idle
        resumeReading(context: context)
        finishLaneRequest()
    }

    /// A request the hot path took but cannot answer goes to the router after all, as if it had been routed there.
    private func handOff(_ request: HTTPRequest, context: ChannelHandlerContext) {
        if viaLane, let lane {
            // From the lane: its bytes go to the decoder, which brings the request here again, to be routed afresh.
            state = .idle
            viaLane = false
            lane.handBack()
            resumeReading(context: context)
            return
        }
        state = .idle
        routerPending += 1
        routerStarts()
        context.fireChannelRead(wrapInboundOut(.head(request)))
        context.fireChannelRead(wrapInboundOut(.end(nil)))
        context.fireChannelReadComplete()
        resumeReading(context: context)
    }

    private func fail(_ error: any Error, request: HTTPRequest, close: Bool, context: ChannelHandlerContext) {
        let problem = ProblemMiddleware.problem(for: error, logger: hot.logger)
        let (fields, body) = problem.rendered(instance: request.path.map(Self.pathOnly) ?? "")
        respond(problem.status, fields, body: body, to: request, forceClose: close, context: context)
    }

    // MARK: Responses

    private func respond(_ status: HTTPResponse.Status, _ fields: HTTPFields, body: ByteBuffer?, to request: HTTPRequest,
                         forceClose: Bool = false, context: ChannelHandlerContext) {
        let close = forceClose || Self.asksToClose(request)
        hot.metrics.recordResponse(status: Int(status.code), hotPath: true)
        if viaLane, let lane {
            lane.write(laneResponse(status, fields, body: body, to: request, close: close), promise: nil)
        } else {
            let contentLength = status == .noContent ? nil : body?.readableBytes ?? 0
            let head = responseHead(status, fields, to: request, contentLength: contentLength, close: close)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if let body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        responded(close: close, forceClose: forceClose, context: context)
    }

    private static func asksToClose(_ request: HTTPRequest) -> Bool {
        request.headerFields.value(.connection)?.lowercased() == "close"
    }

    /// A whole response to a request from the lane, as bytes.
    private func laneResponse(_ status: HTTPResponse.Status, _ fields: HTTPFields, body: ByteBuffer?, to request: HTTPRequest,
                              close: Bool) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.reserveCapacity(768 + (body?.readableBytes ?? 0))
        laneResponseHead(status, fields, to: request, contentLength: status == .noContent ? nil : body?.readableBytes ?? 0, close: close,
                         into: &bytes)
        if var body { bytes.writeBuffer(&body) }
        return bytes
    }

    /// After a response was written: the connection closes, or reads the next request.
    private func responded(close: Bool, forceClose: Bool, context: ChannelHandlerContext) {
        if close {
            state = .closing
            held.removeAll()
            if forceClose {
                // The rest of a refused body is still coming: closing now would reset the connection and could
                // destroy the answer before the client reads it. Send FIN, discard what arrives, close when the
                // client is done (or after a grace period), like nginx's lingering close.
                context.close(mode: .output, promise: nil)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: Self.lingerGrace) { loopBound.value.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
            finishLaneRequest()
            return
        }
        state = .idle
        resumeReading(context: context)
        finishLaneRequest()
    }

    /// After the response to a request from the lane: the lane goes on to its next request.
    private func finishLaneRequest() {
        guard viaLane else { return }
        viaLane = false
        lane?.finished()
    }

    /// A response head as the router would send it: its headers, the ones every response carries, and the framing
    /// (`contentLength` nil: chunked, which the HTTP encoder adds).
    private func responseHead(_ status: HTTPResponse.Status, _ fields: HTTPFields, to request: HTTPRequest, contentLength: Int?,
                              close: Bool = false) -> HTTPResponse {
        var fields = Self.ownFields(fields, contentLength: contentLength, close: close)
        CommonResponseFields.add(to: &fields, method: request.method)
        return HTTPResponse(status: status, headerFields: fields)
    }

    /// The same head as bytes, for a request from the lane (`contentLength` nil: chunked, framed by the caller).
    private func laneResponseHead(_ status: HTTPResponse.Status, _ fields: HTTPFields, to request: HTTPRequest, contentLength: Int?,
                                  close: Bool = false, into bytes: inout ByteBuffer) {
        var fields = Self.ownFields(fields, contentLength: contentLength, close: close)
        if contentLength == nil, status != .noContent { fields[.transferEncoding] = "chunked" }  // as the encoder adds it
        HTTP1Wire.writeResponseHead(status, fields, common: hot.commonFields.encoded(for: request.method), into: &bytes)
    }

    private static func ownFields(_ fields: HTTPFields, contentLength: Int?, close: Bool) -> HTTPFields {
        var fields = fields
        if let contentLength { fields[.contentLength] = String(contentLength) }
        if close { fields[.connection] = "close" }
        return fields
    }

    /// After an answer (or a hand-off): whatever a pipelining client sent meanwhile, in order (it may start another
    /// hot request), then reads again if they were wanted.
    private func resumeReading(context: ChannelHandlerContext) {
        let replaying = !held.isEmpty
        while isReading, let part = held.popFirst() {
            handle(part, context: context)
        }
        // What was handed on reaches the router's request stream at the end of a read (it yields in batches).
        if replaying { context.fireChannelReadComplete() }
        if readWanted, isReading {
            readWanted = false
            context.read()
        }
        closeIfAbandoned(context: context)
    }

    /// Whether parts are being taken (not waiting for a commit, not streaming, not closing).
    private var isReading: Bool {
        switch state {
        case .answering, .streaming, .closing: false
        default: true
        }
    }

    private func logRequest(_ request: HTTPRequest, tokenID: String, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        var logger = hot.logger
        logger[metadataKey: "hub.token"] = "\(tokenID)"
        logger.debug("request", metadata: [
            "http.method": "\(request.method)", "http.path": "\(request.path.map(Self.pathOnly) ?? "")", "hub.path": "hot",
            "http.duration_ms": "\(RequestLogMiddleware.milliseconds(elapsed))",
        ])
    }

    private static func pathOnly(_ target: String) -> String {
        target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
    }
}

@available(*, unavailable)
extension HotPathHandler: Sendable {}
