import Foundation
import NIOCore

/// One recorded connection: the frames each side sent, in order (see Fixtures/capture).
struct RecordedConnection {
    var name: String
    var client: [ByteBuffer] = []
    var server: [ByteBuffer] = []
    /// Raw four-letter-word bytes the client sent, when the connection was a 4lw command.
    var fourLetterBytes: [UInt8] = []
    var fourLetterAnswer: [UInt8] = []
}

enum Fixtures {
    static var directory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    static func bytes(hex: Substring) -> [UInt8] {
        precondition(hex.count % 2 == 0, "odd hex length in a fixture")
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    static func files(extension ext: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == ext }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func connections() throws -> [RecordedConnection] {
        try files(extension: "frames").map { url in
            var connection = RecordedConnection(name: url.lastPathComponent)
            for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let payload = parts[1]
                switch parts[0] {
                case "C": connection.client.append(ByteBuffer(bytes: bytes(hex: payload)))
                case "S": connection.server.append(ByteBuffer(bytes: bytes(hex: payload)))
                case "C4": connection.fourLetterBytes += bytes(hex: payload)
                case "S4": connection.fourLetterAnswer += bytes(hex: payload)
                default: continue  // comments
                }
            }
            return connection
        }
    }

    /// Raw peer connections: (name, bytes from the side that connected, bytes from the side that accepted).
    static func streams() throws -> [(name: String, initiator: ByteBuffer, acceptor: ByteBuffer)] {
        try files(extension: "stream").map { url in
            var initiator = ByteBuffer()
            var acceptor = ByteBuffer()
            for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
                if line.hasPrefix("I ") { initiator.writeBytes(bytes(hex: line.dropFirst(2))) }
                if line.hasPrefix("A ") { acceptor.writeBytes(bytes(hex: line.dropFirst(2))) }
            }
            return (url.lastPathComponent, initiator, acceptor)
        }
    }

    static func txns() throws -> [ByteBuffer] {
        try files(extension: "txns").flatMap { url in
            try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
                .filter { $0.hasPrefix("T ") }
                .map { ByteBuffer(bytes: bytes(hex: $0.dropFirst(2))) }
        }
    }
}

extension ByteBuffer {
    var hexDump: String { readableBytesView.map { String(format: "%02x", $0) }.joined() }
}
