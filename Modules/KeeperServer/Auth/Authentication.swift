import KeeperModel

/// ZooKeeper's authentication providers and ACL checks (DigestAuthenticationProvider,
/// IPAuthenticationProvider, the world and auth schemes, and the super digest), as
/// PrepRequestProcessor.checkACL and fixupACL apply them.
public enum Authentication {
    /// `user:password` -> `user:base64(sha1(user:password))` (DigestAuthenticationProvider.generateDigest).
    public static func digest(_ idPassword: String) -> String {
        let user = idPassword.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]
        return "\(user):\(Base64.encode(SHA1.hash(Array(idPassword.utf8))))"
    }

    /// The ids an auth packet adds to a connection, or nil when the scheme is unknown or the
    /// credentials are refused (ZooKeeper answers AuthFailed and closes the connection).
    public static func authenticate(scheme: String, auth: [UInt8], superDigest: String?, remoteAddress: String) -> [Id]? {
        switch scheme {
        case "digest":
            // ZooKeeper hashes whatever it is given: "nocolon" authenticates as user "nocolon".
            guard let text = String(validating: auth, as: UTF8.self) else { return nil }
            let id = digest(text)
            var ids = [Id(scheme: "digest", id: id)]
            if let superDigest, id == superDigest { ids.append(Id(scheme: "super", id: "")) }
            return ids
        case "ip":
            // The IP provider ignores the bytes and vouches for the connection's address.
            return [Id(scheme: "ip", id: remoteAddress)]
        default:
            return nil
        }
    }

    /// The user name whoAmI reports for an id (the digest scheme's user, before the colon).
    public static func userName(of id: Id) -> String {
        id.scheme == "digest" ? String(id.id.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]) : id.id
    }

    /// What getACL shows a client without ADMIN permission: digest hashes replaced by "x".
    public static func redacted(_ acl: [ACL]) -> [ACL] {
        acl.map { entry in
            guard entry.id.scheme == "digest" else { return entry }
            return ACL(perms: entry.perms, id: Id(scheme: "digest", id: userName(of: entry.id) + ":x"))
        }
    }

    /// Whether an ACL id is well formed for its scheme (ZooKeeper's provider.isValid).
    static func isValid(_ id: Id) -> Bool {
        switch id.scheme {
        case "world": return id.id == "anyone"
        case "digest": return id.id.split(separator: ":", omittingEmptySubsequences: false).count == 2
        case "ip": return CIDR(id.id) != nil
        case "auth": return true
        case "super": return true
        default: return false
        }
    }

    /// ZooKeeper's fixupACL: refuses empty or invalid lists (InvalidACL) and replaces `auth:`
    /// entries with the ids the client authenticated as (only authenticated schemes: digest,
    /// super). Duplicates are removed, keeping order.
    public static func fixup(_ acl: [ACL], authIds: [Id]) -> [ACL]? {
        guard !acl.isEmpty else { return nil }
        var out: [ACL] = []
        for entry in acl {
            if entry.id.scheme == "auth" {
                let authenticated = authIds.filter { $0.scheme == "digest" || $0.scheme == "super" }
                guard !authenticated.isEmpty else { return nil }
                for id in authenticated where !out.contains(ACL(perms: entry.perms, id: id)) {
                    out.append(ACL(perms: entry.perms, id: id))
                }
            } else {
                guard isValid(entry.id) else { return nil }
                if !out.contains(entry) { out.append(entry) }
            }
        }
        return out
    }

    /// PrepRequestProcessor.checkACL: super passes; an empty ACL passes; world:anyone with the
    /// permission passes; otherwise one of the client's ids must match an entry with the bit.
    public static func allows(_ acl: [ACL], _ perm: Permissions, authIds: [Id]) -> Bool {
        if authIds.contains(where: { $0.scheme == "super" }) { return true }
        if acl.isEmpty { return true }
        for entry in acl where entry.perms.contains(perm) {
            if entry.id.scheme == "world" && entry.id.id == "anyone" { return true }
            for id in authIds where id.scheme == entry.id.scheme {
                switch id.scheme {
                case "ip":
                    if let cidr = CIDR(entry.id.id), cidr.contains(id.id) { return true }
                default:
                    if id.id == entry.id.id { return true }
                }
            }
        }
        return false
    }
}

/// An IPv4 or IPv6 address with an optional prefix length (`10.0.0.0/8`, `::1`).
struct CIDR: Hashable {
    var address: [UInt8]
    var bits: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = CIDR.parse(String(parts[0])) else { return nil }
        self.address = address
        if parts.count == 2 {
            guard let b = Int(parts[1]), b >= 0, b <= address.count * 8 else { return nil }
            bits = b
        } else {
            bits = address.count * 8
        }
    }

    func contains(_ text: String) -> Bool {
        guard let other = CIDR.parse(text), other.count == address.count else { return false }
        var remaining = bits
        for i in 0..<address.count where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
            if address[i] & mask != other[i] & mask { return false }
            remaining -= 8
        }
        return true
    }

    static func parse(_ text: String) -> [UInt8]? {
        if text.contains(":") { return parseIPv6(text) }
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var out: [UInt8] = []
        for o in octets {
            guard let v = UInt8(o) else { return nil }
            out.append(v)
        }
        return out
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard let v = UInt16(g, radix: 16), g.count <= 4 else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
}

extension String {
    fileprivate func components(separatedBy separator: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: separator) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}
