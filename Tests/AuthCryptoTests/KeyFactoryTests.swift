import AuthCore
import AuthCrypto
import Testing

@Suite("KeyFactory, randomness and errors")
struct KeyFactoryTests {
    static let secret = Array("an example secret that is long enough for HS256".utf8)

    @Test("SHA-256 of published inputs (FIPS 180-2 examples)")
    func sha256() {
        #expect(Digest.sha256([]) == hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
        #expect(Digest.sha256(Array("abc".utf8)) == hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
    }

    @Test("SHA-1 hex of published inputs (FIPS 180-2 examples), as Redis names scripts")
    func sha1() {
        #expect(Digest.sha1Hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(Digest.sha1Hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }

    @Test("the same inputs give the same 12-character kid", arguments: JWTAlgorithm.allCases)
    func deterministic(_ algorithm: JWTAlgorithm) throws {
        let a = try KeyFactory.makeKey(algorithm: algorithm, secret: Self.secret, for: .access)
        let b = try KeyFactory.makeKey(algorithm: algorithm, secret: Self.secret, for: .access)
        #expect(a.kid == b.kid)
        #expect(a.kid.utf8.count == 12)
        #expect(Base64URL.decode(a.kid)?.count == 9)
        #expect(a.algorithm == algorithm)
        #expect(try a.sign("payload") == b.sign("payload"))
    }

    @Test("kid matches the documented rule")
    func kidRule() throws {
        let key = try KeyFactory.makeKey(algorithm: .hs256, secret: Self.secret, for: .refresh)
        let digest = Digest.sha256(Array("authd-kid:refresh:HS256:".utf8) + Self.secret)
        #expect(key.kid == Base64URL.encode(digest.prefix(9)))
        #expect(!key.kid.contains("secret"))
    }

    @Test("purpose, algorithm and secret each change the kid")
    func kidsDiffer() throws {
        let kids = try [
            KeyFactory.makeKey(algorithm: .hs256, secret: Self.secret, for: .access).kid,
            KeyFactory.makeKey(algorithm: .hs256, secret: Self.secret, for: .refresh).kid,
            KeyFactory.makeKey(algorithm: .edDSA, secret: Self.secret, for: .access).kid,
            KeyFactory.makeKey(algorithm: .edDSA, secret: Self.secret, for: .refresh).kid,
            KeyFactory.makeKey(algorithm: .hs256, secret: Self.secret + [0], for: .access).kid,
        ]
        #expect(Set(kids).count == kids.count)
    }

    @Test("HS256 uses the secret itself as the HMAC key")
    func hs256Rule() throws {
        let key = try KeyFactory.makeKey(algorithm: .hs256, secret: HMACKeyTests.a1Key, for: .access)
        #expect(Base64URL.encode(try key.sign(HMACKeyTests.a1Input)) == HMACKeyTests.a1Signature)
        #expect(key.publicJWK == nil)
    }

    @Test("EdDSA uses SHA-256(secret) as the seed")
    func edDSARule() throws {
        let key = try KeyFactory.makeKey(algorithm: .edDSA, secret: Self.secret, for: .access)
        let direct = try Ed25519Key(seed: Digest.sha256(Self.secret), kid: key.kid)
        #expect(try key.sign("x") == direct.sign("x"))
        let jwk = try #require(key.publicJWK)
        #expect(jwk.first { $0.0 == "kid" }?.1 == key.kid)
        #expect(jwk.first { $0.0 == "x" }?.1 == Base64URL.encode(direct.publicKey))
    }

    @Test("keys for different purposes do not verify each other's tokens", arguments: JWTAlgorithm.allCases)
    func purposesSeparate(_ algorithm: JWTAlgorithm) throws {
        // Distinct secrets per purpose, as configuration requires.
        let access = try KeyFactory.makeKey(algorithm: algorithm, secret: Self.secret, for: .access)
        let refresh = try KeyFactory.makeKey(algorithm: algorithm, secret: Self.secret.reversed(), for: .refresh)
        let signature = try access.sign("token")
        #expect(access.verify(signature, for: "token"))
        #expect(!refresh.verify(signature, for: "token"))
        #expect(!refresh.verify(try refresh.sign("token"), for: "tokeN"))
    }

    @Test("the kid derivation is the one tokens already issued carry (values from an independent SHA-256)")
    func kidsAreStable() throws {
        #expect(try KeyFactory.makeKey(algorithm: .hs256, secret: Self.secret, for: .access).kid == "RC7dDMe-PKDs")
        #expect(try KeyFactory.makeKey(algorithm: .edDSA, secret: Self.secret, for: .access).kid == "rVxtz2rg7rKM")
        #expect(try KeyFactory.makeKey(algorithm: .hs256, secret: Self.secret, for: .refresh).kid == "SRxvr1EwcAW4")
        #expect(try KeyFactory.makeKey(algorithm: .edDSA, secret: Self.secret, for: .refresh).kid == "hFLj1w6zUIX6")
    }

    @Test("empty secrets are refused")
    func refusals() {
        #expect(throws: CryptoError.self) { try KeyFactory.makeKey(algorithm: .hs256, secret: [], for: .access) }
        #expect(throws: CryptoError.self) { try KeyFactory.makeKey(algorithm: .edDSA, secret: [], for: .refresh) }
    }

    @Test("randomBytes and Secrets.generate")
    func randomness() throws {
        #expect(try randomBytes(0) == [])
        let a = try randomBytes(32), b = try randomBytes(32)
        #expect(a.count == 32 && a != b)
        #expect(throws: CryptoError.self) { try randomBytes(-1) }
        let s = try Secrets.generate()
        #expect(s.utf8.count == 43)
        #expect(Base64URL.decode(s)?.count == 32)
        #expect(try Secrets.generate() != s)
    }

    @Test("CryptoError names the failing call")
    func errorDescription() {
        do {
            _ = try Ed25519Key(seed: [1, 2, 3], kid: "k")
            Issue.record("expected a throw")
        } catch let error as CryptoError {
            #expect(error.source == .invalidArgument)
            #expect(error.call == "Ed25519Key.init")
            #expect(error.description.hasPrefix("Ed25519Key.init failed: "))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
