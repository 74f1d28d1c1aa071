import Benchmark
import KeeperModel
import KeeperWire
import NIOCore

// Codec benchmarks: the per-request CPU of the jute codec on the hot paths. The target is the
// getData pair under 1 µs with no allocation beyond the output buffers (which are reused).

let stat = Stat(
    czxid: 0x1_0000_0003, mzxid: 0x1_0000_0007, ctime: 1_764_000_000_000, mtime: 1_764_000_000_500,
    version: 3, cversion: 0, aversion: 0, ephemeralOwner: 0, dataLength: 100, numChildren: 0,
    pzxid: 0x1_0000_0003)
let payload = [UInt8](repeating: 0x61, count: 100)
/// 15 UTF-8 bytes: a Swift small string, so decoding it allocates nothing. (A longer path costs
/// one allocation for its String.)
let path = "/bench/node-001"

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .cpuTotal, .mallocCountTotal, .throughput]

    // Client encodes getData, server decodes it and encodes the reply, client decodes the reply.
    Benchmark(
        "getData request+reply: encode+decode",
        configuration: .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(3))
    ) { benchmark in
        var requestOut = ByteBufferAllocator().buffer(capacity: 256)
        var replyOut = ByteBufferAllocator().buffer(capacity: 512)
        var xid: Int32 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            xid &+= 1
            // Client: encode.
            requestOut.clear()
            Request.getData(GetDataRequest(path: path, watch: false)).writeFrame(xid: xid, to: &requestOut)
            // Server: frame, decode.
            var inbound = requestOut
            let frame = try JuteFraming.nextFrame(in: &inbound, maxLength: Limits.default.maxBuffer)!
            let (header, request) = try Request.decode(frame: frame)
            guard case .getData(let getData) = request else { fatalError("not a getData") }
            blackHole(getData.path)
            // Server: encode the reply straight into the outbound buffer.
            replyOut.clear()
            payload.withUnsafeBytes { data in
                replyOut.writeGetDataReply(xid: header.xid, zxid: Zxid(0x1_0000_0009), data: data, stat: stat)
            }
            // Client: frame, decode.
            var replyInbound = replyOut
            let replyFrame = try JuteFraming.nextFrame(in: &replyInbound, maxLength: Limits.default.maxBuffer)!
            var reader = JuteReader(replyFrame)
            let replyHeader = try ReplyHeader(jute: &reader)
            let response = try GetDataResponse(jute: &reader)
            precondition(replyHeader.xid == xid && response.stat == stat)
            blackHole(response)
        }
    }

    // The server's half only: decode a getData frame, encode its reply.
    Benchmark(
        "getData server side: decode request, encode reply",
        configuration: .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(3))
    ) { benchmark in
        var requestOut = ByteBufferAllocator().buffer(capacity: 256)
        Request.getData(GetDataRequest(path: path, watch: true)).writeFrame(xid: 7, to: &requestOut)
        let frame = try JuteFraming.nextFrame(in: &requestOut, maxLength: Limits.default.maxBuffer)!
        var replyOut = ByteBufferAllocator().buffer(capacity: 512)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let (header, request) = try Request.decode(frame: frame)
            guard case .getData(let getData) = request else { fatalError("not a getData") }
            blackHole(getData)
            replyOut.clear()
            payload.withUnsafeBytes { data in
                replyOut.writeGetDataReply(xid: header.xid, zxid: Zxid(0x1_0000_0009), data: data, stat: stat)
            }
            blackHole(replyOut.readableBytes)
        }
    }

    // The write path's codec work: decode a setData request, encode its txn for the log.
    Benchmark(
        "setData: decode request, encode txn",
        configuration: .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(3))
    ) { benchmark in
        var requestOut = ByteBufferAllocator().buffer(capacity: 256)
        Request.setData(SetDataRequest(path: path, data: ByteBuffer(bytes: payload), version: -1))
            .writeFrame(xid: 9, to: &requestOut)
        let frame = try JuteFraming.nextFrame(in: &requestOut, maxLength: Limits.default.maxBuffer)!
        var txnOut = ByteBufferAllocator().buffer(capacity: 512)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let (header, request) = try Request.decode(frame: frame)
            guard case .setData(let setData) = request else { fatalError("not a setData") }
            let entry = TxnEntry(
                header: TxnHeader(clientID: SessionID(0x100), cxid: header.xid, zxid: Zxid(0x1_0000_000a), time: 1, type: .setData),
                txn: .setData(SetDataTxn(path: setData.path, data: Array(setData.data!.readableBytesView), version: 4)))
            txnOut.clear()
            TxnCodec.write(entry, to: &txnOut)
            blackHole(txnOut.readableBytes)
        }
    }
}
