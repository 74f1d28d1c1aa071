import KeeperModel
import KeeperWire
import NIOCore

// libFuzzer entry point: the first byte picks a decoder, the second is a parameter (an opcode
// index), the rest is the untrusted input. Decoding must never trap, hang or leak; whatever
// decodes must survive encode-then-decode unchanged (a violated property traps on purpose, so
// the fuzzer reports it).

/// A small jute.maxbuffer so that the limit checks are reached by short inputs too.
let fuzzMaxBuffer = 4096

let opCodes = OpCode.allCases

/// The callback main.swift hands to libFuzzer's driver.
let fuzzCallback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt = { start, count in
    guard let start else { return 0 }
    return fuzzOne(start, count)
}

/// libFuzzer's runtime references this symbol even when its driver is given the callback.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count >= 2 else { return 0 }
    let selector = start[0]
    let parameter = Int(start[1])
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: start + 2, count: count - 2))
    switch selector % 9 {
    case 0: clientStream(input)
    case 1: requestFrame(input)
    case 2: replyFrame(input, opCode: opCodes[parameter % opCodes.count])
    case 3: txn(input)
    case 4: quorumStream(input)
    case 5: election(input)
    case 6: connect(input)
    case 7: records(input, which: parameter)
    default: peerFrames(input)
    }
    return 0
}

func check(_ condition: Bool, _ what: @autoclosure () -> String) {
    if !condition { fatalError("round-trip property violated: \(what())") }
}

/// A client connection's bytes, split at every chunk boundary the parameter-free chunking picks.
func clientStream(_ input: ByteBuffer) {
    var decoder = ClientFrameDecoder(maxFrameLength: fuzzMaxBuffer)
    var stream = input
    var pending = ByteBuffer()
    var first = true
    while stream.readableBytes > 0 {
        var chunk = stream.readSlice(length: min(stream.readableBytes, 7))!
        pending.writeBuffer(&chunk)
        do {
            while let frame = try decoder.next(from: &pending) {
                switch frame {
                case .fourLetterWord: return
                case .frame(let payload):
                    if first {
                        first = false
                        connect(payload)
                    } else {
                        requestFrame(payload)
                    }
                }
            }
        } catch {
            return
        }
    }
}

func connect(_ input: ByteBuffer) {
    guard let request = try? ConnectRequest.decode(from: input, maxLength: fuzzMaxBuffer) else { return }
    let again = try! ConnectRequest.decode(from: request.encoded(), maxLength: fuzzMaxBuffer)
    check(again == request, "ConnectRequest")
}

func requestFrame(_ input: ByteBuffer) {
    guard let (header, request) = try? Request.decode(frame: input, maxLength: fuzzMaxBuffer) else { return }
    var buffer = ByteBuffer()
    request.writeFrame(xid: header.xid, to: &buffer)
    let frame = try! JuteFraming.nextFrame(in: &buffer, maxLength: Int.max)!
    let (header2, request2) = try! Request.decode(frame: frame, maxLength: fuzzMaxBuffer)
    check(header2 == header && request2 == request, "request \(request.opCode)")
}

func replyFrame(_ input: ByteBuffer, opCode: OpCode) {
    var reader = JuteReader(input, maxLength: fuzzMaxBuffer)
    guard let header = try? ReplyHeader(jute: &reader),
        let response = try? Response.decode(for: opCode, header: header, from: &reader)
    else { return }
    var buffer = ByteBuffer()
    buffer.writeReply(header, response)
    let frame = try! JuteFraming.nextFrame(in: &buffer, maxLength: Int.max)!
    var again = JuteReader(frame, maxLength: fuzzMaxBuffer)
    let header2 = try! ReplyHeader(jute: &again)
    let response2 = try! Response.decode(for: opCode, header: header2, from: &again)
    check(header2 == header && response2 == response, "reply to \(opCode)")
}

func txn(_ input: ByteBuffer) {
    guard let (entry, digest) = try? TxnCodec.decode(input, maxLength: fuzzMaxBuffer) else { return }
    var buffer = ByteBuffer()
    TxnCodec.write(entry, digest: digest, to: &buffer)
    let (entry2, digest2) = try! TxnCodec.decode(buffer, maxLength: fuzzMaxBuffer)
    check(entry2 == entry && digest2 == digest, "txn \(entry.header.type)")
}

func quorumStream(_ input: ByteBuffer) {
    let decoder = QuorumPacketDecoder(maxLength: fuzzMaxBuffer)
    var pending = input
    while let packet = try? decoder.next(from: &pending) {
        var buffer = packet.encoded()
        let again = try! decoder.next(from: &buffer)
        check(again == packet && buffer.readableBytes == 0, "QuorumPacket")
        if packet.type == .followerInfo || packet.type == .observerInfo, let data = packet.data,
            let info = try? LearnerInfo.decode(exactly: data)
        {
            check(try! LearnerInfo.decode(exactly: info.encoded()) == info, "LearnerInfo")
        }
        if packet.type == .request, let data = packet.data, let forwarded = try? ForwardedRequest(decoding: data) {
            var body = JuteReader(forwarded.body, maxLength: fuzzMaxBuffer)
            _ = try? Request.decode(type: forwarded.type, from: &body)
        }
        if packet.type == .proposal, let data = packet.data { txn(data) }
    }
}

func election(_ input: ByteBuffer) {
    guard let notification = try? ElectionNotification(decoding: input) else { return }
    var buffer = ByteBuffer()
    notification.write(to: &buffer)
    check(try! ElectionNotification(decoding: buffer) == notification, "ElectionNotification")
}

func records(_ input: ByteBuffer, which: Int) {
    func roundTrip<R: JuteRecord>(_: R.Type) {
        guard let record = try? R.decode(exactly: input, maxLength: fuzzMaxBuffer) else { return }
        check(try! R.decode(exactly: record.encoded(), maxLength: fuzzMaxBuffer) == record, "\(R.self)")
    }
    switch which % 10 {
    case 0: roundTrip(WatchEvent.self)
    case 1: roundTrip(ConnectResponse.self)
    case 2: roundTrip(AuthPacket.self)
    case 3: roundTrip(Stat.self)
    case 4: roundTrip(GetACLResponse.self)
    case 5: roundTrip(WhoAmIResponse.self)
    case 6: roundTrip(TxnDigest.self)
    case 7: roundTrip(LearnerInfo.self)
    case 8: roundTrip(Create2Response.self)
    default:
        var reader = JuteReader(input, maxLength: fuzzMaxBuffer)
        guard let header = try? ElectionConnectionHeader(jute: &reader) else { return }
        var buffer = ByteBuffer()
        header.write(to: &buffer)
        var again = JuteReader(buffer, maxLength: fuzzMaxBuffer)
        check(try! ElectionConnectionHeader(jute: &again) == header, "ElectionConnectionHeader")
    }
}

/// Election and peer connections: length-prefixed frames.
func peerFrames(_ input: ByteBuffer) {
    var pending = input
    while let frame = try? JuteFraming.nextFrame(in: &pending, maxLength: fuzzMaxBuffer) {
        election(frame)
    }
}
