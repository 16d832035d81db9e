import AuthCore
import FuzzSupport

@_cdecl("FuzzJWT_main")  // see runLibFuzzer
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzJWT)
}

/// Two tokens from every input:
/// 1. the bytes themselves as a bearer token, against every codec (forgery attempts:
///    any token that verifies must be one the harness could have signed);
/// 2. a token the harness signs with the access key over the input as payload (or, when
///    the input holds a NUL byte, header NUL payload), so that the code behind the
///    signature check (header and claims parsing) is reached too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let token = String(decoding: input, as: UTF8.self)  // as the FastCGI edge makes it
    for codec in [Harness.access, Harness.refresh, Harness.edDSAAccess] {
        if let claims = try? codec.verify(token, now: Harness.now) { checkGenuine(token, claims, codec) }
    }

    let header: [UInt8], payload: [UInt8]
    if let nul = input.firstIndex(of: 0) {
        (header, payload) = (Array(input[..<nul]), Array(input[(nul + 1)...]))
    } else {
        (header, payload) = (ownHeader(Harness.access), input)
    }
    var signed = Base64URL.encode(header) + "." + Base64URL.encode(payload)
    let signature = try! Array(signed.utf8).withUnsafeBytes { try Harness.access.keys.signing.sign($0) }
    signed += "." + Base64URL.encode(signature)

    let result = Result { () throws(TokenError) in try Harness.access.verify(signed, now: Harness.now) }
    if case .success(let claims) = result { checkGenuine(signed, claims, Harness.access) }
    // The reference reading of the claims must agree whenever the header is acceptable.
    if headerAccepted(header, Harness.access) {
        let expected = expectedClaims(payload, Harness.access)
        check(expected == (try? result.get()), "claims \(result) but expected \(String(describing: expected))")
    }
    // Access and refresh tokens never verify as each other; HS256 never as EdDSA.
    check((try? Harness.refresh.verify(signed, now: Harness.now)) == nil, "access token verified as refresh")
    check((try? Harness.edDSAAccess.verify(signed, now: Harness.now)) == nil, "HS256 token verified by EdDSA codec")
    return 0
}

/// `{"alg":…,"typ":…,"kid":…}` as TokenCodec writes it for its signing key.
func ownHeader(_ codec: TokenCodec) -> [UInt8] {
    var w = JSONWriter()
    w.beginObject()
    w.field("alg", codec.keys.signing.algorithm.rawValue)
    w.field("typ", codec.kind.rawValue)
    w.field("kid", codec.keys.signing.kid)
    w.endObject()
    return w.bytes
}

func object(_ bytes: [UInt8]) -> [String: JSONValue]? {
    guard case .object(let o)? = try? JSONParser.parse(bytes) else { return nil }
    return o
}

/// API.md's header rules: a known `kid`, that key's `alg` (never `none`), this kind's `typ`, no `crit`.
func headerAccepted(_ header: [UInt8], _ codec: TokenCodec) -> Bool {
    guard let h = object(header), case .string(let kid)? = h["kid"], let key = codec.keys.key(kid: kid),
          case .string(let alg)? = h["alg"], alg == key.algorithm.rawValue, alg != "none",
          case .string(let typ)? = h["typ"], typ == codec.kind.rawValue, h["crit"] == nil
    else { return false }
    return true
}

/// The claims a token with this payload must verify to at `Harness.now`, or nil when it
/// must be refused: an independent reading of the rules, to hold TokenCodec's fast path
/// and general path to.
func expectedClaims(_ payload: [UInt8], _ codec: TokenCodec) -> Claims? {
    guard let p = object(payload) else { return nil }
    func string(_ name: String) -> String? {
        guard case .string(let s)? = p[name] else { return nil }
        return s
    }
    func seconds(_ name: String) -> Int64? {
        guard case .number(let d)? = p[name], d == d.rounded(.towardZero), abs(d) < 1e15 else { return nil }
        return Int64(d)
    }
    guard let iss = string("iss"), let sub = string("sub"), let aud = string("aud"), let jti = string("jti"),
          let sid = string("sid"), let iat = seconds("iat"), let exp = seconds("exp")
    else { return nil }
    let nbf = seconds("nbf")
    if p["nbf"] != nil && nbf == nil { return nil }
    let username = string("preferred_username")
    if p["preferred_username"] != nil && username == nil { return nil }
    guard Harness.now < exp + codec.leeway, Harness.now + codec.leeway >= nbf ?? .min, iss == codec.issuer else { return nil }
    return Claims(issuer: iss, subject: UserID(sub), audience: aud, issuedAt: iat, expiresAt: exp,
                  notBefore: nbf, id: jti, session: SessionID(sid), username: username)
}

/// A token that verified: its header follows the rules, re-signing its signing input with
/// the key it names gives exactly its signature segment, and its claims are the expected ones.
func checkGenuine(_ token: String, _ claims: Claims, _ codec: TokenCodec) {
    let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    check(parts.count == 3, "verified token without three parts: \(token)")
    let header = Base64URL.decode(parts[0]) ?? []
    check(headerAccepted(header, codec), "verified token with a header that breaks the rules: \(token)")
    guard let h = object(header), case .string(let kid)? = h["kid"], let key = codec.keys.key(kid: kid) else { return }
    let input = Array(token.utf8[..<parts[1].endIndex])
    let signature = try! input.withUnsafeBytes { try key.sign($0) }
    check(Base64URL.encode(signature).utf8.elementsEqual(parts[2]), "verified token with a foreign signature: \(token)")
    let expected = expectedClaims(Base64URL.decode(parts[1]) ?? [], codec)
    check(expected == claims, "verified claims \(claims), expected \(String(describing: expected))")
}
