import AuthCore
import AuthCrypto
import Testing

@Suite("Ed25519Key (EdDSA)")
struct Ed25519KeyTests {
    // RFC 8037 Appendix A.1-A.4.
    static let seed = b64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
    static let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    static let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    static let signature = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

    @Test("RFC 8037 A.2 public key and JWK members")
    func publicKey() throws {
        let key = try Ed25519Key(seed: Self.seed, kid: "k1")
        #expect(Base64URL.encode(key.publicKey) == Self.x)
        #expect(key.algorithm == .edDSA)
        let jwk = try #require(key.publicJWK)
        #expect(jwk.map(\.0) == ["kty", "crv", "x", "use", "alg", "kid"])
        #expect(jwk.map(\.1) == ["OKP", "Ed25519", Self.x, "sig", "EdDSA", "k1"])
    }

    @Test("RFC 8037 A.4 signature and A.5 verification")
    func rfc8037Signature() throws {
        let key = try Ed25519Key(seed: Self.seed, kid: "k1")
        let signature = try key.sign(Self.input)
        #expect(Base64URL.encode(signature) == Self.signature)
        #expect(key.verify(b64(Self.signature), for: Self.input))
    }

    @Test("tampering and wrong lengths are rejected")
    func tampering() throws {
        let key = try Ed25519Key(seed: Self.seed, kid: "k1")
        let good = b64(Self.signature)

        var input = Array(Self.input.utf8)
        input[0] ^= 0x01
        #expect(!key.verify(good, for: input))

        for index in [0, 31, 32, 63] {
            var bad = good
            bad[index] ^= 0x01
            #expect(!key.verify(bad, for: Self.input))
        }
        #expect(!key.verify(Array(good.dropLast()), for: Self.input))
        #expect(!key.verify(good + [0], for: Self.input))
        #expect(!key.verify([], for: Self.input))
        #expect(!key.verify([UInt8](repeating: 0, count: 64), for: Self.input))

        var otherSeed = Self.seed
        otherSeed[0] ^= 0x01
        let other = try Ed25519Key(seed: otherSeed, kid: "k2")
        #expect(!other.verify(good, for: Self.input))
    }

    @Test("seeds of the wrong length are refused", arguments: [0, 31, 33, 64])
    func badSeed(_ length: Int) {
        #expect(throws: CryptoError.self) {
            try Ed25519Key(seed: [UInt8](repeating: 7, count: length), kid: "k")
        }
    }

    @Test("signing is deterministic and works on empty input")
    func deterministic() throws {
        let key = try Ed25519Key(seed: Self.seed, kid: "k1")
        let a = try key.sign([UInt8]()), b = try key.sign([UInt8]())
        #expect(a == b)
        #expect(a.count == 64)
        #expect(key.verify(a, for: [UInt8]()))
    }

    @Test("a shared key signs and verifies from many threads")
    func concurrentUse() async throws {
        let key = try Ed25519Key(seed: Self.seed, kid: "k1")
        let expected = b64(Self.signature)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    (0..<200).allSatisfy { _ in
                        (try? key.sign(Self.input)) == expected && key.verify(expected, for: Self.input)
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 })
    }
}

@Suite("Algorithm confusion")
struct KeyConfusionTests {
    @Test("an HMAC key never accepts an Ed25519 signature, nor the reverse")
    func confusion() throws {
        let ed = try Ed25519Key(seed: Ed25519KeyTests.seed, kid: "k")
        // The HMAC secret is the Ed25519 public key: the classic confusion attack.
        let hs = HMACKey(secret: ed.publicKey, kid: "k")
        let input = Ed25519KeyTests.input

        let edSignature = try ed.sign(input)
        let hsSignature = try hs.sign(input)
        #expect(!hs.verify(edSignature, for: input))
        #expect(!ed.verify(hsSignature, for: input))
        // Same length as the other algorithm's signature, still refused.
        #expect(!hs.verify(Array(edSignature.prefix(32)), for: input))
        #expect(!ed.verify(hsSignature + hsSignature, for: input))
    }
}
