import Testing
@testable import AuthCore

@Suite struct TokenCodecTests {
    let key = ChecksumKey(kid: "k1", secret: 1)
    var codec: TokenCodec { TokenCodec(kind: .access, keys: KeyRing(signing: key), issuer: "iss", leeway: 0) }
    let claims = Claims(issuer: "iss", subject: UserID("u1"), audience: "u1", issuedAt: 1000, expiresAt: 1100,
                        id: "j1", session: SessionID("s1"))

    func parts(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }
    func json(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }
    /// A token with the given header and payload, signed by `key` like a real one.
    func forge(header: String, payload: String, with key: any SigningKey) throws -> String {
        let input = json(header) + "." + json(payload)
        let sig = try Array(input.utf8).withUnsafeBytes { try key.sign($0) }
        return input + "." + Base64URL.encode(sig)
    }
    var payload: String { #"{"iss":"iss","sub":"u1","aud":"u1","iat":1000,"exp":1100,"jti":"j1","sid":"s1"}"# }

    @Test func roundTripsAndWritesTheHeader() throws {
        let token = try codec.sign(claims)
        #expect(try codec.verify(token, now: 1050) == claims)
        let header = try JSONParser.parse(Base64URL.decode(parts(token)[0])!)
        #expect(header == .object(["alg": .string("HS256"), "typ": .string("at+jwt"), "kid": .string("k1")]))
        #expect(try codec.sign(claims) == token, "signing is deterministic")
    }

    @Test func expiryAndLeeway() throws {
        let token = try codec.sign(claims)
        #expect(throws: TokenError.expired) { try codec.verify(token, now: 1100) }
        let lenient = TokenCodec(kind: .access, keys: KeyRing(signing: key), issuer: "iss", leeway: 30)
        #expect(try lenient.verify(token, now: 1129) == claims)
        #expect(throws: TokenError.expired) { try lenient.verify(token, now: 1130) }
    }

    @Test func notBefore() throws {
        var c = claims
        c.notBefore = 1060
        let token = try codec.sign(c)
        #expect(throws: TokenError.notYetValid) { try codec.verify(token, now: 1059) }
        #expect(try codec.verify(token, now: 1060).notBefore == 1060)
    }

    @Test func wrongIssuer() throws {
        let other = TokenCodec(kind: .access, keys: KeyRing(signing: key), issuer: "someone-else", leeway: 0)
        #expect(throws: TokenError.wrongIssuer) { try other.verify(try codec.sign(claims), now: 1050) }
    }

    @Test func refreshTokenIsNotAnAccessToken() throws {
        let refresh = TokenCodec(kind: .refresh, keys: KeyRing(signing: key), issuer: "iss", leeway: 0)
        #expect(throws: TokenError.wrongKind) { try codec.verify(try refresh.sign(claims), now: 1050) }
    }

    @Test func algNoneIsRefused() throws {
        let unsigned = json(#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#) + "." + json(payload) + "."
        #expect(throws: TokenError.algorithmMismatch) { try codec.verify(unsigned, now: 1050) }
        let noKid = json(#"{"alg":"none","typ":"at+jwt"}"#) + "." + json(payload) + "."
        #expect(throws: TokenError.unknownKey) { try codec.verify(noKid, now: 1050) }
    }

    @Test func algorithmIsPinnedByTheKey() throws {
        // Header claims EdDSA for an HS256 key: refused before any signature check.
        let confused = try forge(header: #"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#, payload: payload, with: key)
        #expect(throws: TokenError.algorithmMismatch) { try codec.verify(confused, now: 1050) }
        let hs512 = try forge(header: #"{"alg":"HS512","typ":"at+jwt","kid":"k1"}"#, payload: payload, with: key)
        #expect(throws: TokenError.algorithmMismatch) { try codec.verify(hs512, now: 1050) }
    }

    @Test func unknownKidAndForeignKey() throws {
        let foreign = ChecksumKey(kid: "k1", secret: 2)
        let forged = try forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#, payload: payload, with: foreign)
        #expect(throws: TokenError.badSignature) { try codec.verify(forged, now: 1050) }
        let unknown = try forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"k9"}"#, payload: payload, with: key)
        #expect(throws: TokenError.unknownKey) { try codec.verify(unknown, now: 1050) }
    }

    @Test func tamperedPartsAreRefused() throws {
        let token = try codec.sign(claims)
        var p = parts(token)
        p[1] = json(payload.replacingOccurrences(of: "u1", with: "u2"))
        #expect(throws: TokenError.badSignature) { try codec.verify(p.joined(separator: "."), now: 1050) }
        p = parts(token)
        p[2] = String(p[2].dropLast()) + (p[2].last == "A" ? "Q" : "A")
        #expect(throws: (any Error).self) { try codec.verify(p.joined(separator: "."), now: 1050) }
    }

    @Test(arguments: ["", "abc", "a.b", "a.b.c.d", "..", "!!.!!.!!", "e30.e30.", "e30.e30.AA"])
    func malformedTokens(_ token: String) {
        #expect(throws: (any Error).self) { try codec.verify(token, now: 1050) }
    }

    @Test func oversizedTokenIsRefusedBeforeParsing() {
        let big = String(repeating: "a", count: TokenCodec.maxTokenLength + 1)
        #expect(throws: TokenError.malformed("token too long")) { try codec.verify(big, now: 1050) }
    }

    @Test func claimsOfTheWrongTypeAreRefused() throws {
        let bad = try forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
                            payload: #"{"iss":"iss","sub":1,"aud":"u1","iat":1000,"exp":"1100","jti":"j1","sid":"s1"}"#, with: key)
        #expect(throws: TokenError.malformed("claims")) { try codec.verify(bad, now: 1050) }
        let fractional = try forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
                                   payload: #"{"iss":"iss","sub":"u1","aud":"u1","iat":1000,"exp":1100.5,"jti":"j1","sid":"s1"}"#, with: key)
        #expect(throws: TokenError.malformed("claims")) { try codec.verify(fractional, now: 1050) }
    }

    @Test func critHeaderIsRefused() throws {
        let t = try forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"k1","crit":["exp"]}"#, payload: payload, with: key)
        #expect(throws: TokenError.malformed("crit header")) { try codec.verify(t, now: 1050) }
    }

    @Test func rotationKeepsOldKeysVerifying() throws {
        let old = ChecksumKey(kid: "old", secret: 7)
        let oldToken = try TokenCodec(kind: .access, keys: KeyRing(signing: old), issuer: "iss", leeway: 0).sign(claims)
        let rotated = TokenCodec(kind: .access, keys: KeyRing(signing: key, alsoVerifying: [old]), issuer: "iss", leeway: 0)
        #expect(try rotated.verify(oldToken, now: 1050) == claims)
        #expect(parts(try rotated.sign(claims))[0] == parts(try codec.sign(claims))[0], "the active key signs")
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String { split(separator: a, omittingEmptySubsequences: false).joined(separator: b) }
}

/// The flat claims reader is a fast path: it must take every payload this service writes
/// and must never accept a payload differently from the general parser.
@Suite struct ClaimsReaderTests {
    func general(_ text: String) -> Claims? {
        guard case .object(let p)? = try? JSONParser.parse(Array(text.utf8)),
              case .string(let iss)? = p["iss"], case .string(let sub)? = p["sub"], case .string(let aud)? = p["aud"],
              case .string(let jti)? = p["jti"], case .string(let sid)? = p["sid"],
              let iat = ClaimsReader.seconds(p["iat"]), let exp = ClaimsReader.seconds(p["exp"]) else { return nil }
        let nbf = p["nbf"].flatMap { ClaimsReader.seconds($0) }
        var username: String?
        switch p["preferred_username"] {
        case nil: break
        case .string(let name)?: username = name
        default: return nil
        }
        return Claims(issuer: iss, subject: UserID(sub), audience: aud, issuedAt: iat, expiresAt: exp, notBefore: nbf,
                      id: jti, session: SessionID(sid), username: username)
    }

    static let base = #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"#

    @Test func takesWhatTheServiceWrites() throws {
        let codec = TokenCodec(kind: .access, keys: KeyRing(signing: ChecksumKey(kid: "k", secret: 1)), issuer: "authd", leeway: 0)
        for (nbf, username) in [(nil, nil), (Int64(1500), nil), (nil, "alice.b-c_9"), (Int64(7), "bob")] as [(Int64?, String?)] {
            let claims = Claims(issuer: "authd", subject: UserID("Xy-_09"), audience: "Xy-_09", issuedAt: 1_795_000_000,
                                expiresAt: 1_826_536_000, notBefore: nbf, id: "jti-value", session: SessionID("sid_value"),
                                username: username)
            let token = try codec.sign(claims)
            let payload = Base64URL.decode(String(token.split(separator: ".")[1]))!
            #expect(ClaimsReader.flat(payload) == claims)
        }
    }

    @Test(arguments: [
        base,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","nbf":-5}"#,
        #"{ "iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","sub":"u2","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"auth\u0064","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":01000,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1e3,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000.5,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":1234567890123456,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","xyz":1}"#,
        #"{"iss":"authd","sub":1,"aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":"2000","jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"ü","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}x"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1",}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":-0,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"exp":3000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","preferred_username":"al"}"#,
        #"{"preferred_username":"al","iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","preferred_username":7}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","preferred_username":"a","preferred_username":"b"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","preferred_username":"\u00e9"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","preferred_usernam":"a"}"#,
        #"{"iss":"authd","sub":"u1","aud":"u1","iat":1000,"exp":2000,"jti":"j1","sid":"s1","preferred_username":}"#,
    ])
    func neverDisagreesWithTheGeneralParser(_ text: String) throws {
        let payload = Array(text.utf8)
        if let fast = ClaimsReader.flat(payload) {
            #expect(fast == general(text), "fast path accepted \(text) differently")
        }
        // And the reader as a whole gives the general parser's answer.
        #expect((try? ClaimsReader.read(payload)) == general(text))
    }

    @Test func fastPathIsTaken() {
        #expect(ClaimsReader.flat(Array(Self.base.utf8)) != nil)
    }
}
