/// Permission bits (ZooDefs.Perms).
public struct Permissions: OptionSet, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let read = Permissions(rawValue: 1)
    public static let write = Permissions(rawValue: 2)
    public static let create = Permissions(rawValue: 4)
    public static let delete = Permissions(rawValue: 8)
    public static let admin = Permissions(rawValue: 16)
    public static let all: Permissions = [.read, .write, .create, .delete, .admin]
}

/// An identity: a scheme (`world`, `auth`, `digest`, `ip`, `super`, ...) and an id in it.
public struct Id: Hashable, Sendable {
    public var scheme: String
    public var id: String
    public init(scheme: String, id: String) {
        self.scheme = scheme
        self.id = id
    }
    /// `world:anyone`.
    public static let anyone = Id(scheme: "world", id: "anyone")
    /// `auth:` (the ids the creator authenticated with, resolved at create time).
    public static let authIds = Id(scheme: "auth", id: "")
}

/// One entry of a znode's access control list.
public struct ACL: Hashable, Sendable {
    public var perms: Permissions
    public var id: Id
    public init(perms: Permissions, id: Id) {
        self.perms = perms
        self.id = id
    }
    /// ZooDefs.Ids.OPEN_ACL_UNSAFE.
    public static let openUnsafe: [ACL] = [ACL(perms: .all, id: .anyone)]
    /// ZooDefs.Ids.READ_ACL_UNSAFE.
    public static let readUnsafe: [ACL] = [ACL(perms: .read, id: .anyone)]
    /// ZooDefs.Ids.CREATOR_ALL_ACL.
    public static let creatorAll: [ACL] = [ACL(perms: .all, id: .authIds)]
}
