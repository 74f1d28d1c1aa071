import KeeperModel
import NIOCore

/// `ConnectRequest{int protocolVersion; long lastZxidSeen; int timeOut; long sessionId;
/// buffer passwd; boolean readOnly}`: the first frame of a client connection (44 or 45 bytes).
///
/// `readOnly` is optional on the wire: clients before 3.4 (and some third-party clients) stop
/// after `passwd`. It is nil when absent, and the server must then answer without it.
public struct ConnectRequest: JuteRecord {
    public var protocolVersion: Int32
    public var lastZxidSeen: Zxid
    /// The session timeout the client asks for, in milliseconds.
    public var timeOut: Int32
    /// 0 for a new session, else the session the client wants to resume.
    public var sessionID: SessionID
    public var passwd: [UInt8]
    /// Whether the client accepts a read-only server; nil when the client did not send the byte.
    public var readOnly: Bool?

    public init(
        protocolVersion: Int32 = 0, lastZxidSeen: Zxid, timeOut: Int32, sessionID: SessionID,
        passwd: [UInt8], readOnly: Bool?
    ) {
        self.protocolVersion = protocolVersion
        self.lastZxidSeen = lastZxidSeen
        self.timeOut = timeOut
        self.sessionID = sessionID
        self.passwd = passwd
        self.readOnly = readOnly
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        protocolVersion = try reader.readInt("ConnectRequest", "protocolVersion")
        lastZxidSeen = Zxid(try reader.readLong("ConnectRequest", "lastZxidSeen"))
        timeOut = try reader.readInt("ConnectRequest", "timeOut")
        sessionID = SessionID(try reader.readLong("ConnectRequest", "sessionId"))
        // ZooKeeper reads a null passwd as an empty one.
        passwd = try reader.readBytes("ConnectRequest", "passwd") ?? []
        readOnly = reader.isAtEnd ? nil : try reader.readBool("ConnectRequest", "readOnly")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(protocolVersion)
        buffer.writeJuteLong(lastZxidSeen.rawValue)
        buffer.writeJuteInt(timeOut)
        buffer.writeJuteLong(sessionID.rawValue)
        buffer.writeJuteBuffer(passwd)
        if let readOnly { buffer.writeJuteBool(readOnly) }
    }
}

/// `ConnectResponse{int protocolVersion; int timeOut; long sessionId; buffer passwd;
/// boolean readOnly}`.
///
/// `readOnly` is written only when non-nil: answer with it only when the client's
/// ConnectRequest carried it (ZooKeeper 3.9.3+, ZOOKEEPER-4660: clients broke when 3.9.0-3.9.2
/// always sent it). A session that cannot be revived is answered with timeOut 0, sessionId 0
/// and a zeroed passwd (`ConnectResponse.expired`).
public struct ConnectResponse: JuteRecord {
    public var protocolVersion: Int32
    /// The negotiated session timeout in milliseconds.
    public var timeOut: Int32
    public var sessionID: SessionID
    public var passwd: [UInt8]
    public var readOnly: Bool?

    public init(protocolVersion: Int32 = 0, timeOut: Int32, sessionID: SessionID, passwd: [UInt8], readOnly: Bool?) {
        self.protocolVersion = protocolVersion
        self.timeOut = timeOut
        self.sessionID = sessionID
        self.passwd = passwd
        self.readOnly = readOnly
    }

    /// The answer to a ConnectRequest whose session is expired or unknown.
    public static func expired(answering request: ConnectRequest) -> ConnectResponse {
        ConnectResponse(
            timeOut: 0, sessionID: .none, passwd: [UInt8](repeating: 0, count: 16),
            readOnly: request.readOnly.map { _ in false })
    }

    public init(jute reader: inout JuteReader) throws(JuteDecodingError) {
        protocolVersion = try reader.readInt("ConnectResponse", "protocolVersion")
        timeOut = try reader.readInt("ConnectResponse", "timeOut")
        sessionID = SessionID(try reader.readLong("ConnectResponse", "sessionId"))
        passwd = try reader.readBytes("ConnectResponse", "passwd") ?? []
        readOnly = reader.isAtEnd ? nil : try reader.readBool("ConnectResponse", "readOnly")
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeJuteInt(protocolVersion)
        buffer.writeJuteInt(timeOut)
        buffer.writeJuteLong(sessionID.rawValue)
        buffer.writeJuteBuffer(passwd)
        if let readOnly { buffer.writeJuteBool(readOnly) }
    }
}

/// A four-letter-word command (`ruok`, `srvr`, ...): ZooKeeper reads the first 4 bytes of a
/// connection as a frame length and, when they spell a known command, answers it as text and
/// closes the connection instead of reading a ConnectRequest.
public struct FourLetterWord: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 4 bytes as the big-endian int ZooKeeper compares (`ByteBuffer.wrap("ruok".getBytes()).getInt()`).
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The command from its four ASCII letters.
    public init(_ word: StaticString) {
        precondition(word.utf8CodeUnitCount == 4, "a four-letter word has four letters")
        let p = word.utf8Start
        rawValue = Int32(bitPattern: UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3]))
    }

    /// The command's name (`"ruok"`), or `"telnet close"` for the telnet interrupt sequence.
    public var description: String {
        if self == .telnetClose { return "telnet close" }
        let bits = UInt32(bitPattern: rawValue)
        let bytes = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: bits >> $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static let conf = FourLetterWord("conf")
    public static let cons = FourLetterWord("cons")
    public static let crst = FourLetterWord("crst")
    public static let dirs = FourLetterWord("dirs")
    public static let dump = FourLetterWord("dump")
    public static let envi = FourLetterWord("envi")
    public static let gtmk = FourLetterWord("gtmk")
    public static let ruok = FourLetterWord("ruok")
    /// `stmk` is followed by an 8-byte trace mask.
    public static let stmk = FourLetterWord("stmk")
    public static let srvr = FourLetterWord("srvr")
    public static let srst = FourLetterWord("srst")
    public static let stat = FourLetterWord("stat")
    public static let wchc = FourLetterWord("wchc")
    public static let wchp = FourLetterWord("wchp")
    public static let wchs = FourLetterWord("wchs")
    public static let mntr = FourLetterWord("mntr")
    public static let isro = FourLetterWord("isro")
    public static let hash = FourLetterWord("hash")
    /// Telnet's interrupt-process sequence (IAC IP IAC DO): ZooKeeper closes the connection.
    public static let telnetClose = FourLetterWord(rawValue: Int32(bitPattern: 0xfff4_fffd))

    /// Every command ZooKeeper 3.9 recognises (FourLetterCommands).
    public static let known: Set<FourLetterWord> = [
        .conf, .cons, .crst, .dirs, .dump, .envi, .gtmk, .ruok, .stmk, .srvr, .srst, .stat, .wchc,
        .wchp, .wchs, .mntr, .isro, .hash, .telnetClose,
    ]

    /// The command these first 4 bytes of a connection spell, or nil when they are a frame length.
    /// (Every known word reads as a length far above `jute.maxbuffer`, so the two never collide.)
    public static func recognise(firstInt: Int32) -> FourLetterWord? {
        let word = FourLetterWord(rawValue: firstInt)
        return known.contains(word) ? word : nil
    }
}
