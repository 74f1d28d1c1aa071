import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal HTTP/1.1 client for a SwiftKeeper admin server (`http://host:port`): one GET per
/// connection, the body streamed in blocks (Content-Length, chunked, or until the server
/// closes), so a backup is never held whole in memory. Plain sockets keep keeperctl free of
/// any networking stack; only `http://` is spoken (the admin server binds 127.0.0.1 by
/// default: reach a remote one through an SSH tunnel).
public struct AdminEndpoint: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// `user:password` for the `Authorization: digest user:password` header (ZooKeeper 3.9's
    /// admin authentication); nil sends none.
    public var auth: String?

    /// The longest a read may wait for the server (a snapshot of a large store is copied and
    /// its digest checked before the first byte is sent).
    public static let readTimeoutSeconds = 600
    /// The longest accepted status line plus headers.
    public static let maxHeaderBytes = 64 << 10

    /// Parses `http://host:port` (a trailing slash is allowed).
    public init(url: String, auth: String? = nil) throws {
        var rest = Substring(url)
        guard rest.hasPrefix("http://") else {
            throw BackupError.badServer(url: url, detail: "expected http://host:port (only plain HTTP is spoken)")
        }
        rest = rest.dropFirst("http://".count)
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            throw BackupError.badServer(url: url, detail: "expected http://host:port with the admin server's port (admin.serverPort)")
        }
        var host = String(rest[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw BackupError.badServer(url: url, detail: "no host") }
        self.host = host
        self.port = port
        self.auth = auth
    }

    public var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// Sends `GET path` and returns the response with its headers read; read the body from it.
    public func get(_ path: String) throws -> AdminResponse {
        let fd = try connect()
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: keeperctl\r\nConnection: close\r\n"
        if let auth { request += "Authorization: digest \(auth)\r\n" }
        request += "\r\n"
        let response = AdminResponse(fd: fd, endpoint: description + path)
        try response.send(Array(request.utf8))
        try response.readHead()
        return response
    }

    private func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw BackupError.badServer(url: description, detail: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastErrno: Int32 = 0
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 {
                lastErrno = errno
                continue
            }
            var timeout = timeval(tv_sec: AdminEndpoint.readTimeoutSeconds, tv_usec: 0)
            guard setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                lastErrno = errno
                _ = close(fd)
                continue
            }
            if posixConnect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            lastErrno = errno
            _ = close(fd)  // a socket that never connected: nothing to lose on close
        }
        throw BackupError.badServer(url: description, detail: "cannot connect: \(String(cString: strerror(lastErrno))) (is the admin server enabled, admin.enableServer, on this address?)")
    }
}

/// One response of the admin server: status, headers, and a body read in blocks.
public final class AdminResponse {
    private let fd: Int32
    public let endpoint: String
    public private(set) var status = 0
    public private(set) var reason = ""
    /// Header names in lower case.
    public private(set) var headers: [String: String] = [:]
    private var buffer: [UInt8] = []
    private var position = 0
    private var eof = false
    private enum Framing { case length(Int64), chunked, untilClose }
    private var framing = Framing.untilClose
    /// Chunked: bytes left in the current chunk; nil between chunks.
    private var chunkLeft: Int?
    private var done = false

    init(fd: Int32, endpoint: String) {
        self.fd = fd
        self.endpoint = endpoint
    }

    deinit {
        _ = close(fd)  // the response was read (or abandoned on an error being reported)
    }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + sent, bytes.count - sent) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BackupError.io(operation: "send to", path: endpoint, errno: errno)
            }
            sent += n
        }
    }

    /// Reads more bytes into the buffer; false at the end of the connection.
    private func fill() throws -> Bool {
        if eof { return false }
        if position > 0 && position == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            position = 0
        }
        var block = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            let n = block.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw BackupError.badServer(url: endpoint, detail: "no answer for \(AdminEndpoint.readTimeoutSeconds) s")
                }
                throw BackupError.io(operation: "receive from", path: endpoint, errno: errno)
            }
            if n == 0 {
                eof = true
                return false
            }
            buffer.append(contentsOf: block[..<n])
            return true
        }
    }

    private func readLine() throws -> String {
        while true {
            if let nl = buffer[position...].firstIndex(of: 0x0A) {
                var line = buffer[position..<nl]
                if line.last == 0x0D { line = line.dropLast() }
                position = nl + 1
                return String(decoding: line, as: UTF8.self)
            }
            guard buffer.count - position <= AdminEndpoint.maxHeaderBytes else {
                throw BackupError.badServer(url: endpoint, detail: "a header line longer than \(AdminEndpoint.maxHeaderBytes) bytes")
            }
            guard try fill() else { throw BackupError.badServer(url: endpoint, detail: "the connection closed inside the response head") }
        }
    }

    func readHead() throws {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
            throw BackupError.badServer(url: endpoint, detail: "not an HTTP response: \(statusLine.prefix(80))")
        }
        status = code
        reason = parts.count == 3 ? String(parts[2]) : ""
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = value
        }
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            framing = .chunked
        } else if let length = headers["content-length"].flatMap({ Int64($0) }) {
            framing = .length(length)
        }
    }

    /// The next block of the body, or nil at its end.
    public func nextBlock() throws -> [UInt8]? {
        if done { return nil }
        switch framing {
        case .untilClose:
            if position == buffer.count, !(try fill()) {
                done = true
                return nil
            }
            defer { position = buffer.count }
            return Array(buffer[position...])
        case .length(let left):
            if left == 0 {
                done = true
                return nil
            }
            if position == buffer.count, !(try fill()) {
                throw BackupError.badServer(url: endpoint, detail: "the connection closed with \(left) body bytes still to come")
            }
            let take = Int(min(Int64(buffer.count - position), left))
            defer {
                position += take
                framing = .length(left - Int64(take))
            }
            return Array(buffer[position..<(position + take)])
        case .chunked:
            if chunkLeft == nil || chunkLeft == 0 {
                if chunkLeft == 0 { _ = try readLine() }  // the CRLF after a chunk's data
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                    throw BackupError.badServer(url: endpoint, detail: "bad chunk size line \(sizeLine.prefix(40))")
                }
                if size == 0 {
                    while !(try readLine()).isEmpty {}  // trailers
                    done = true
                    return nil
                }
                chunkLeft = size
            }
            if position == buffer.count, !(try fill()) {
                throw BackupError.badServer(url: endpoint, detail: "the connection closed inside a chunk")
            }
            let take = min(buffer.count - position, chunkLeft!)
            defer {
                position += take
                chunkLeft! -= take
            }
            return Array(buffer[position..<(position + take)])
        }
    }

    /// The whole body (for small JSON answers), at most `limit` bytes.
    public func readBody(limit: Int = 16 << 20) throws -> [UInt8] {
        var out: [UInt8] = []
        while let block = try nextBlock() {
            out += block
            guard out.count <= limit else { throw BackupError.badServer(url: endpoint, detail: "a body longer than \(limit) bytes") }
        }
        return out
    }

    /// The `error` of a JSON error body, or the body's text.
    public func errorMessage() -> String {
        let body: [UInt8]
        do { body = try readBody(limit: 1 << 20) } catch { return "(unreadable body: \(error))" }
        do {
            if let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let message = object["error"] as? String {
                return message
            }
        } catch {
            // Not JSON: the raw text below says what the server said.
        }
        return String(decoding: body.prefix(400), as: UTF8.self)
    }
}

// The C call under a name no Swift member shadows, for Glibc and Darwin alike.
func posixConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 { connect(fd, address, length) }
