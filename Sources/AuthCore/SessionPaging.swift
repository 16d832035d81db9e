// GET /auth/sessions?limit=&cursor=: the query of a page and the cursor that names where
// the next one starts. A page is bounded (at most `maxLimit` sessions), so what one
// answer costs Redis, authd and the client is bounded too, whatever the user's count.

/// The `nextCursor` of a page: where the next page starts, opaque to clients.
///
/// 34 characters of the base64url alphabet: the position's `lastUsedAt` and `createdAt`
/// as 6 base64url digits each (36 bits, big-endian), then its session id (22 characters).
/// Every string of that shape is a position, so a client cannot make one that breaks
/// anything; a made-up one just starts the page somewhere.
public enum SessionCursor {
    static let length = 34
    /// The largest time a position can hold (what the store's index can order).
    static let maxTime: Int64 = 9_999_999_999

    /// Nil when the id is not 22 base64url characters (every id this service makes is).
    public static func encode(_ position: SessionPosition) -> String? {
        let id = position.id.rawValue.utf8
        guard id.count == 22, id.allSatisfy({ Base64URL.value($0) != 0xFF }) else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(length)
        for time in [position.lastUsedAt, position.createdAt] {
            let v = UInt64(clamping: min(max(time, 0), maxTime))
            for shift in stride(from: 30, through: 0, by: -6) { out.append(Base64URL.character(UInt8((v >> UInt64(shift)) & 63))) }
        }
        out += id
        return String(decoding: out, as: UTF8.self)
    }

    /// The position of a cursor; nil unless 34 base64url characters. Times beyond what a
    /// position can hold (only a made-up cursor has them) are taken as the largest.
    public static func decode(_ text: String) -> SessionPosition? {
        let bytes = Array(text.utf8)
        guard bytes.count == length else { return nil }
        var values = [UInt8]()
        values.reserveCapacity(length)
        for b in bytes {
            let v = Base64URL.value(b)
            guard v != 0xFF else { return nil }
            values.append(v)
        }
        func time(_ range: Range<Int>) -> Int64 {
            min(values[range].reduce(Int64(0)) { $0 << 6 | Int64($1) }, maxTime)
        }
        return SessionPosition(lastUsedAt: time(0..<6), createdAt: time(6..<12),
                               id: SessionID(String(decoding: bytes[12...], as: UTF8.self)))
    }
}

/// The query of `GET /auth/sessions`: `limit` (1-100, default 50) and `cursor` (a
/// `nextCursor`; absent for the first page). Other parameters are ignored.
struct SessionListQuery: Equatable {
    static let defaultLimit = 50
    static let maxLimit = 100

    var limit = defaultLimit
    var after: SessionPosition?

    static let badLimit = APIError(.invalidQuery, "\"limit\" must be a whole number from 1 to \(maxLimit)")
    static let badCursor = APIError(.invalidQuery, "\"cursor\" must be the nextCursor of an earlier page")

    /// Parses a raw (percent-encoded) query string; 400 naming the parameter when `limit`
    /// or `cursor` is malformed or given twice.
    init(_ query: String) throws(APIError) {
        var seen: Set<String> = []
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            guard let name = Self.formDecoded(pair[..<(equals ?? pair.endIndex)]), name == "limit" || name == "cursor" else {
                continue
            }
            guard seen.insert(name).inserted else { throw APIError(.invalidQuery, "\"\(name)\" may be given only once") }
            let value = equals.flatMap { Self.formDecoded(pair[pair.index(after: $0)...]) }
            if name == "limit" {
                guard let value, !value.isEmpty, value.utf8.count <= 9, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                      let n = Int(value), (1...Self.maxLimit).contains(n) else { throw Self.badLimit }
                limit = n
            } else {
                guard let value, let position = SessionCursor.decode(value) else { throw Self.badCursor }
                after = position
            }
        }
    }

    /// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte); nil
    /// for a malformed escape or bytes that are not UTF-8.
    static func formDecoded(_ text: Substring.UTF8View) -> String? {
        var out = [UInt8]()
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            let b = text[i]
            if b == UInt8(ascii: "%") {
                let h = text.index(after: i)
                guard h < text.endIndex, text.index(after: h) < text.endIndex,
                      let high = hexValue(text[h]), let low = hexValue(text[text.index(after: h)]) else { return nil }
                out.append(high << 4 | low)
                i = text.index(h, offsetBy: 2)
                continue
            }
            out.append(b == UInt8(ascii: "+") ? 0x20 : b)
            i = text.index(after: i)
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}
