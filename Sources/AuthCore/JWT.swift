/// The two kinds of token, told apart by the JWS `typ` header and by their keys.
public enum TokenKind: String, Sendable {
    case access = "at+jwt"
    case refresh = "rt+jwt"
}

/// The claims of both kinds of token (API.md, Tokens).
public struct Claims: Equatable, Sendable {
    public var issuer: String
    public var subject: UserID
    public var audience: String
    public var issuedAt: Int64
    public var expiresAt: Int64
    public var notBefore: Int64?
    public var id: String
    public var session: SessionID

    public init(issuer: String, subject: UserID, audience: String, issuedAt: Int64, expiresAt: Int64,
                notBefore: Int64? = nil, id: String, session: SessionID) {
        self.issuer = issuer
        self.subject = subject
        self.audience = audience
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.id = id
        self.session = session
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

    public init(kind: TokenKind, keys: KeyRing, issuer: String, leeway: Int64) {
        self.kind = kind
        self.keys = keys
        self.issuer = issuer
        self.leeway = leeway
        var w = JSONWriter()
        w.beginObject()
        w.field("alg", keys.signing.algorithm.rawValue)
        w.field("typ", kind.rawValue)
        w.field("kid", keys.signing.kid)
        w.endObject()
        signingHeader = Base64URL.encode(w.bytes)
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
    public func verify(_ token: String, now: Int64) throws(TokenError) -> Claims {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maxTokenLength else { throw .malformed("token too long") }
        guard let dot1 = bytes.firstIndex(of: UInt8(ascii: ".")),
              let dot2 = bytes[(dot1 + 1)...].firstIndex(of: UInt8(ascii: ".")),
              !bytes[(dot2 + 1)...].contains(UInt8(ascii: "."))
        else { throw .malformed("not three dot-separated parts") }

        guard let headerBytes = Base64URL.decode(bytes[..<dot1]),
              case .object(let header)? = try? JSONParser.parse(headerBytes)
        else { throw .malformed("header") }
        guard case .string(let kid)? = header["kid"], let key = keys.key(kid: kid) else { throw .unknownKey }
        guard case .string(let alg)? = header["alg"], alg == key.algorithm.rawValue else { throw .algorithmMismatch }
        guard case .string(let typ)? = header["typ"], typ == kind.rawValue else { throw .wrongKind }
        // A header that asks for extensions we do not implement must be refused (RFC 7515 §4.1.11).
        guard header["crit"] == nil else { throw .malformed("crit header") }

        guard let signature = Base64URL.decode(bytes[(dot2 + 1)...]) else { throw .malformed("signature encoding") }
        let valid = bytes.withUnsafeBytes { key.verify(signature, for: UnsafeRawBufferPointer(rebasing: $0[..<dot2])) }
        guard valid else { throw .badSignature }

        guard let payloadBytes = Base64URL.decode(bytes[(dot1 + 1)..<dot2]),
              case .object(let p)? = try? JSONParser.parse(payloadBytes)
        else { throw .malformed("payload") }
        guard case .string(let iss)? = p["iss"], case .string(let sub)? = p["sub"],
              case .string(let aud)? = p["aud"], case .string(let jti)? = p["jti"],
              case .string(let sid)? = p["sid"],
              let iat = Self.seconds(p["iat"]), let exp = Self.seconds(p["exp"])
        else { throw .malformed("claims") }
        var nbf: Int64?
        if let raw = p["nbf"] {
            guard let n = Self.seconds(raw) else { throw .malformed("nbf") }
            nbf = n
        }
        // RFC 7519 §4.1.4: reject on or after exp.
        guard now < exp + leeway else { throw .expired }
        if let nbf, now + leeway < nbf { throw .notYetValid }
        guard iss == issuer else { throw .wrongIssuer }
        return Claims(issuer: iss, subject: UserID(sub), audience: aud, issuedAt: iat, expiresAt: exp,
                      notBefore: nbf, id: jti, session: SessionID(sid))
    }

    /// A NumericDate as whole seconds; nil for anything else.
    private static func seconds(_ v: JSONValue?) -> Int64? {
        guard case .number(let d)? = v, d.rounded(.towardZero) == d, abs(d) < 1e15 else { return nil }
        return Int64(d)
    }
}
