/// The two kinds of token, told apart by the JWS `typ` header and by their keys.
public enum TokenKind: String, Sendable {
    case access = "at+jwt"
    case refresh = "rt+jwt"
}

/// The claims of both kinds of token (docs/API.md, Tokens).
public struct Claims: Equatable, Sendable {
    public var issuer: String
    public var subject: UserID
    public var audience: String
    public var issuedAt: Int64
    public var expiresAt: Int64
    public var notBefore: Int64?
    public var id: String
    public var session: SessionID
    /// `preferred_username` (OpenID Connect's name for it), in access tokens: so that
    /// GET /auth/verify names the user without asking the store. Nil in refresh tokens
    /// and in access tokens issued before it was added.
    public var username: String?

    public init(issuer: String, subject: UserID, audience: String, issuedAt: Int64, expiresAt: Int64,
                notBefore: Int64? = nil, id: String, session: SessionID, username: String? = nil) {
        self.issuer = issuer
        self.subject = subject
        self.audience = audience
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.id = id
        self.session = session
        self.username = username
    }
}

/// Why a token was refused. Only `expired` is told to the client as such.
public enum TokenError: Error, Equatable {
    case malformed(String)
    case unknownKey
    case algorithmMismatch
    case wrongKind
    case badSignature
    case expired
    case notYetValid
    case wrongIssuer
}

/// The keys of one kind of token: one signs, all verify (rotation by `kid`).
public struct KeyRing: Sendable {
    public let signing: any SigningKey
    let byKid: [String: any SigningKey]

    public init(signing: any SigningKey, alsoVerifying: [any SigningKey] = []) {
        self.signing = signing
        var map = [signing.kid: signing]
        for k in alsoVerifying where map[k.kid] == nil { map[k.kid] = k }
        byKid = map
    }

    public var all: [any SigningKey] { [signing] + byKid.values.filter { $0.kid != signing.kid }.sorted { $0.kid < $1.kid } }
    public func key(kid: String) -> (any SigningKey)? { byKid[kid] }
}

/// Signs and verifies one kind of token (JWS compact serialisation, RFC 7515).
///
/// Verification order: the header names a known `kid`, its `alg` is that key's algorithm
/// (so `none` and HS/EdDSA confusion fail), `typ` is this kind's; the signature is checked
/// in constant time over the signing input before the payload is decoded; then
/// `exp`/`nbf` (with leeway) and `iss` against the injected time.
public struct TokenCodec: Sendable {
    public static let maxTokenLength = 8192

    public let kind: TokenKind
    public let keys: KeyRing
    public let issuer: String
    public let leeway: Int64
    private let signingHeader: String
    /// The exact header segment this service writes for each key of the ring: a token
    /// whose header is one of them needs no header parsing (the common case).
    private let knownHeaders: [(segment: [UInt8], key: any SigningKey)]

    public init(kind: TokenKind, keys: KeyRing, issuer: String, leeway: Int64) {
        self.kind = kind
        self.keys = keys
        self.issuer = issuer
        self.leeway = leeway
        signingHeader = Self.header(kind: kind, key: keys.signing)
        knownHeaders = keys.all.map { (Array(Self.header(kind: kind, key: $0).utf8), $0) }
    }

    /// `base64url({"alg":…,"typ":…,"kid":…})`, as this service writes it.
    private static func header(kind: TokenKind, key: any SigningKey) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("alg", key.algorithm.rawValue)
        w.field("typ", kind.rawValue)
        w.field("kid", key.kid)
        w.endObject()
        return Base64URL.encode(w.bytes)
    }

    /// The compact JWS for `claims`, signed with the active key.
    public func sign(_ claims: Claims) throws -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("iss", claims.issuer)
        w.field("sub", claims.subject.rawValue)
        w.field("aud", claims.audience)
        w.field("iat", claims.issuedAt)
        if let nbf = claims.notBefore { w.field("nbf", nbf) }
        w.field("exp", claims.expiresAt)
        w.field("jti", claims.id)
        w.field("sid", claims.session.rawValue)
        if let username = claims.username { w.field("preferred_username", username) }
        w.endObject()
        var input = Array(signingHeader.utf8)
        input.append(UInt8(ascii: "."))
        input.append(contentsOf: Base64URL.encode(w.bytes).utf8)
        let signature = try input.withUnsafeBytes { try keys.signing.sign($0) }
        input.append(UInt8(ascii: "."))
        input.append(contentsOf: Base64URL.encode(signature).utf8)
        return String(decoding: input, as: UTF8.self)
    }

    /// The verified claims of `token` at time `now` (Unix seconds).
    public func verify<S: StringProtocol>(_ token: S, now: Int64) throws(TokenError) -> Claims {
        // Native strings and their substrings are contiguous UTF-8: borrow, don't copy.
        let borrowed = token.utf8.withContiguousStorageIfAvailable { bytes in
            Result { () throws(TokenError) in try verify(bytes, now: now) }
        }
        if let borrowed { return try borrowed.get() }
        return try Array(token.utf8).withUnsafeBufferPointer { bytes in
            Result { () throws(TokenError) in try verify(bytes, now: now) }
        }.get()
    }

    private func verify(_ bytes: UnsafeBufferPointer<UInt8>, now: Int64) throws(TokenError) -> Claims {
        guard bytes.count <= Self.maxTokenLength else { throw .malformed("token too long") }
        guard let dot1 = bytes.firstIndex(of: UInt8(ascii: ".")),
              let dot2 = bytes[(dot1 + 1)...].firstIndex(of: UInt8(ascii: ".")),
              !bytes[(dot2 + 1)...].contains(UInt8(ascii: "."))
        else { throw .malformed("not three dot-separated parts") }

        let key = try self.key(forHeader: bytes[..<dot1])
        guard let signature = Base64URL.decode(bytes[(dot2 + 1)...]) else { throw .malformed("signature encoding") }
        guard key.verify(signature, for: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[..<dot2])) else {
            throw .badSignature
        }

        guard let payload = Base64URL.decode(bytes[(dot1 + 1)..<dot2]) else { throw .malformed("payload") }
        let c = try ClaimsReader.read(payload)
        // RFC 7519 §4.1.4: reject on or after exp.
        guard now < c.expiresAt + leeway else { throw .expired }
        if let nbf = c.notBefore, now + leeway < nbf { throw .notYetValid }
        guard c.issuer == issuer else { throw .wrongIssuer }
        return c
    }

    /// The key named by the header, which must also name that key's algorithm and this
    /// kind of token. Headers this service wrote are recognised byte for byte; any other
    /// is parsed and checked field by field.
    private func key(forHeader segment: Slice<UnsafeBufferPointer<UInt8>>) throws(TokenError) -> any SigningKey {
        for known in knownHeaders where known.segment.elementsEqual(segment) { return known.key }
        guard let headerBytes = Base64URL.decode(segment),
              case .object(let header)? = try? JSONParser.parse(headerBytes)
        else { throw .malformed("header") }
        guard case .string(let kid)? = header["kid"], let key = keys.key(kid: kid) else { throw .unknownKey }
        guard case .string(let alg)? = header["alg"], alg == key.algorithm.rawValue else { throw .algorithmMismatch }
        guard case .string(let typ)? = header["typ"], typ == kind.rawValue else { throw .wrongKind }
        // A header that asks for extensions we do not implement must be refused (RFC 7515 §4.1.11).
        guard header["crit"] == nil else { throw .malformed("crit header") }
        return key
    }

}

/// Reads the claims object of a verified payload.
enum ClaimsReader {
    static func read(_ payload: [UInt8]) throws(TokenError) -> Claims {
        if let fast = flat(payload) { return fast }
        guard case .object(let p)? = try? JSONParser.parse(payload) else { throw .malformed("payload") }
        guard case .string(let iss)? = p["iss"], case .string(let sub)? = p["sub"],
              case .string(let aud)? = p["aud"], case .string(let jti)? = p["jti"],
              case .string(let sid)? = p["sid"],
              let iat = seconds(p["iat"]), let exp = seconds(p["exp"])
        else { throw .malformed("claims") }
        var nbf: Int64?
        if let raw = p["nbf"] {
            guard let n = seconds(raw) else { throw .malformed("nbf") }
            nbf = n
        }
        var username: String?
        if let raw = p["preferred_username"] {
            guard case .string(let name) = raw else { throw .malformed("preferred_username") }
            username = name
        }
        return Claims(issuer: iss, subject: UserID(sub), audience: aud, issuedAt: iat, expiresAt: exp,
                      notBefore: nbf, id: jti, session: SessionID(sid), username: username)
    }

    /// A NumericDate as whole seconds; nil for anything else.
    static func seconds(_ v: JSONValue?) -> Int64? {
        guard case .number(let d)? = v, d.rounded(.towardZero) == d, abs(d) < 1e15 else { return nil }
        return Int64(d)
    }

    /// The payloads this service writes: one flat object of the known claims, each once,
    /// with unescaped ASCII strings and plain integers, no white space. Anything else
    /// returns nil and takes the general parser, so both paths accept the same tokens.
    static func flat(_ p: [UInt8]) -> Claims? {
        // Locals rather than arrays: nothing allocated but the claim strings themselves.
        var iss: String?, sub: String?, aud: String?, jti: String?, sid: String?, username: String?
        var iat: Int64?, exp: Int64?, nbf: Int64?
        var i = 0
        let n = p.count
        guard n > 2, p[0] == UInt8(ascii: "{"), p[n - 1] == UInt8(ascii: "}") else { return nil }
        i = 1
        while true {
            // "xyz": (the registered claims), or "preferred_username": as a name of its own.
            let long = Self.preferredUsername.count
            let name: (UInt8, UInt8, UInt8)
            if i + long < n, p[i + 1] == UInt8(ascii: "p"), p[i..<(i + long)].elementsEqual(Self.preferredUsername) {
                name = (0, 0, 0)
                i += long
            } else {
                guard i + 6 < n, p[i] == UInt8(ascii: "\""), p[i + 4] == UInt8(ascii: "\""), p[i + 5] == UInt8(ascii: ":") else { return nil }
                name = (p[i + 1], p[i + 2], p[i + 3])
                i += 6
            }
            if p[i] == UInt8(ascii: "\"") {
                let start = i + 1
                var j = start
                while j < n, p[j] != UInt8(ascii: "\""), p[j] != UInt8(ascii: "\\"), p[j] >= 0x20, p[j] < 0x80 { j += 1 }
                guard j < n, p[j] == UInt8(ascii: "\"") else { return nil }
                let value = String(decoding: p[start..<j], as: UTF8.self)
                // Each claim once: a repeated key leaves the general parser to refuse it.
                func set(_ slot: inout String?) -> Bool {
                    guard slot == nil else { return false }
                    slot = value
                    return true
                }
                let fresh: Bool
                switch name {
                case (0x69, 0x73, 0x73): fresh = set(&iss)
                case (0x73, 0x75, 0x62): fresh = set(&sub)
                case (0x61, 0x75, 0x64): fresh = set(&aud)
                case (0x6A, 0x74, 0x69): fresh = set(&jti)
                case (0x73, 0x69, 0x64): fresh = set(&sid)
                case (0, 0, 0): fresh = set(&username)
                default: return nil
                }
                guard fresh else { return nil }
                i = j + 1
            } else {
                var j = i
                var negative = false
                if p[j] == UInt8(ascii: "-") { negative = true; j += 1 }
                var value: Int64 = 0
                let digits = j
                while j < n, p[j] >= 0x30, p[j] <= 0x39, j - digits < 15 { value = value * 10 + Int64(p[j] - 0x30); j += 1 }
                // No leading zeros, at most 15 digits, and an integer must end here.
                guard j > digits, j < n, p[digits] != 0x30 || j == digits + 1,
                      p[j] == UInt8(ascii: ",") || p[j] == UInt8(ascii: "}")
                else { return nil }
                let number = negative ? -value : value
                switch name {
                case (0x69, 0x61, 0x74) where iat == nil: iat = number
                case (0x65, 0x78, 0x70) where exp == nil: exp = number
                case (0x6E, 0x62, 0x66) where nbf == nil: nbf = number
                default: return nil
                }
                i = j
            }
            if p[i] == UInt8(ascii: "}") { guard i == n - 1 else { return nil }; break }
            guard p[i] == UInt8(ascii: ",") else { return nil }
            i += 1
        }
        guard let iss, let sub, let aud, let jti, let sid, let iat, let exp else { return nil }
        return Claims(issuer: iss, subject: UserID(sub), audience: aud, issuedAt: iat, expiresAt: exp,
                      notBefore: nbf, id: jti, session: SessionID(sid), username: username)
    }

    static let preferredUsername = Array(#""preferred_username":"#.utf8)
}
