/// Path validation exactly as ZooKeeper's `PathUtils.validatePath` does it, with its messages.
///
/// ZooKeeper checks UTF-16 code units; the same ranges are checked here on Unicode scalars
/// (surrogates cannot occur in a Swift string, and `\u{e000}`...`\u{f8ff}` are refused as the
/// Java code refuses `\ud800`...`\uf8ff`).
public enum ZNodePath {
    /// Why a path is invalid, in ZooKeeper's words ("Invalid path string ... caused by ...").
    public struct Invalid: Error, Hashable, Sendable, CustomStringConvertible {
        public var path: String
        /// ZooKeeper's message, verbatim.
        public var message: String
        public var description: String { message }
        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }
    }

    /// Validates `path`; `isSequential` allows a trailing `/` the sequence suffix completes
    /// (ZooKeeper validates `path + "1"` for sequential creates).
    public static func validate(_ path: String, isSequential: Bool = false) throws(Invalid) {
        if isValidASCII(path, isSequential: isSequential) { return }
        try validateScalars(Array(isSequential ? (path + "1").unicodeScalars : path.unicodeScalars), original: path)
    }

    /// Whether `path` passes `validate`.
    public static func isValid(_ path: String) -> Bool {
        if isValidASCII(path, isSequential: false) { return true }
        do {
            try validate(path)
            return true
        } catch {
            return false
        }
    }

    /// The common case without allocating: true when `path` is printable ASCII and valid by
    /// the rules of `validateScalars` (every write is checked two or three times on the way
    /// to the store). False says nothing: the full check then decides and words the error.
    static func isValidASCII(_ path: String, isSequential: Bool) -> Bool {
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        let checked: Bool? = path.utf8.withContiguousStorageIfAvailable { bytes in
            let n = bytes.count
            guard n > 0, bytes[0] == slash else { return false }
            if n == 1 { return true }
            // "." and ".." are refused as whole names; a sequential create's last name gets
            // its counter appended, so it may be empty, "." or "..".
            func isRelative(_ start: Int, _ end: Int) -> Bool {
                let length = end - start
                return (length == 1 && bytes[start] == dot) || (length == 2 && bytes[start] == dot && bytes[start + 1] == dot)
            }
            var nameStart = 1
            for i in 1..<n {
                let b = bytes[i]
                if b == slash {
                    if bytes[i - 1] == slash || isRelative(nameStart, i) { return false }
                    nameStart = i + 1
                } else if b < 0x20 || b >= 0x7f {
                    return false
                }
            }
            if isSequential { return true }
            return nameStart < n && !isRelative(nameStart, n)
        }
        return checked ?? false
    }

    static func validateScalars(_ chars: [Unicode.Scalar], original: String) throws(Invalid) {
        if chars.isEmpty { throw Invalid(path: original, message: "Path length must be > 0") }
        if chars[0] != "/" { throw Invalid(path: original, message: "Path must start with / character") }
        if chars.count == 1 { return }
        if chars[chars.count - 1] == "/" {
            throw Invalid(path: original, message: "Path must not end with / character")
        }
        func invalid(_ reason: String) -> Invalid {
            Invalid(path: original, message: "Invalid path string \"\(original)\" caused by \(reason)")
        }
        var last: Unicode.Scalar = "/"
        for i in 1..<chars.count {
            let c = chars[i]
            defer { last = c }
            let v = c.value
            if v == 0 {
                throw invalid("null character not allowed @\(i)")
            } else if c == "/" && last == "/" {
                throw invalid("empty node name specified @\(i)")
            } else if c == "." && last == "." {
                if chars[i - 2] == "/" && (i + 1 == chars.count || chars[i + 1] == "/") {
                    throw invalid("relative paths not allowed @\(i)")
                }
            } else if c == "." {
                if chars[i - 1] == "/" && (i + 1 == chars.count || chars[i + 1] == "/") {
                    throw invalid("relative paths not allowed @\(i)")
                }
            } else if (v > 0 && v <= 0x1f) || (v >= 0x7f && v <= 0x9f) || (v >= 0xd800 && v <= 0xf8ff)
                || (v >= 0xfff0 && v <= 0xffff) || v > 0xffff
            {
                // Java sees a character outside the BMP as a surrogate pair (U+D800...), which
                // ZooKeeper refuses; the index is in UTF-16 units, as Java counts it.
                let utf16Index = chars[..<i].reduce(0) { $0 + ($1.value > 0xffff ? 2 : 1) }
                throw invalid("invalid character @\(utf16Index)")
            }
        }
    }

    /// The parent of a valid path ("/" for top-level nodes); nil for the root.
    public static func parent(of path: String) -> Substring? {
        guard path != "/", let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return slash == path.utf8.startIndex ? "/" : path[..<slash]
    }

    /// The last component of a valid path ("" for the root).
    public static func name(of path: String) -> Substring {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return Substring(path) }
        return path[path.utf8.index(after: slash)...]
    }

    /// Joins a parent path and a child name.
    public static func child(_ name: some StringProtocol, of parent: some StringProtocol) -> String {
        parent == "/" ? "/" + name : parent + "/" + name
    }

    /// The ZooKeeper sequential suffix: the counter as `%010d` (negative values keep their sign,
    /// as Java's formatter prints them).
    public static func sequenceSuffix(_ counter: Int32) -> String {
        let digits = String(counter.magnitude)
        let body = String(repeating: "0", count: max(0, (counter < 0 ? 9 : 10) - digits.count)) + digits
        return counter < 0 ? "-" + body : body
    }
}
