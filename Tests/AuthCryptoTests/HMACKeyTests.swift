import AuthCore
import AuthCrypto
import Testing

/// RFC 4231 §4 test cases for HMAC-SHA-256 (case 5, truncated output, does not apply).
struct RFC4231Vector: Sendable, CustomTestStringConvertible {
    let name: String
    let key: String
    let data: String
    let mac: String
    var testDescription: String { name }
}

let rfc4231: [RFC4231Vector] = [
    .init(name: "case 1", key: String(repeating: "0b", count: 20),
          data: "4869205468657265",
          mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    .init(name: "case 2", key: "4a656665",
          data: "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
          mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    .init(name: "case 3", key: String(repeating: "aa", count: 20),
          data: String(repeating: "dd", count: 50),
          mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    .init(name: "case 4", key: "0102030405060708090a0b0c0d0e0f10111213141516171819",
          data: String(repeating: "cd", count: 50),
          mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    .init(name: "case 6", key: String(repeating: "aa", count: 131),
          data: "54657374205573696e67204c61726765"
              + "72205468616e20426c6f636b2d53697a"
              + "65204b6579202d2048617368204b6579"
              + "204669727374",
          mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    .init(name: "case 7", key: String(repeating: "aa", count: 131),
          data: "54686973206973206120746573742075"
              + "73696e672061206c6172676572207468"
              + "616e20626c6f636b2d73697a65206b65"
              + "7920616e642061206c61726765722074"
              + "68616e20626c6f636b2d73697a652064"
              + "6174612e20546865206b6579206e6565"
              + "647320746f2062652068617368656420"
              + "6265666f7265206265696e6720757365"
              + "642062792074686520484d414320616c"
              + "676f726974686d2e",
          mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]

@Suite("HMACKey (HS256)")
struct HMACKeyTests {
    @Test("RFC 4231 vectors", arguments: rfc4231)
    func rfc4231Vector(_ v: RFC4231Vector) throws {
        let key = HMACKey(secret: hex(v.key), kid: "t")
        let mac = try key.sign(hex(v.data))
        #expect(mac == hex(v.mac))
        #expect(key.verify(hex(v.mac), for: hex(v.data)))
    }

    // RFC 7515 Appendix A.1.
    static let a1Key = b64("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
    static let a1Input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    static let a1Signature = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    @Test("RFC 7515 A.1 signature")
    func rfc7515A1() throws {
        let key = HMACKey(secret: Self.a1Key, kid: "a1")
        let signature = try key.sign(Self.a1Input)
        #expect(Base64URL.encode(signature) == Self.a1Signature)
        #expect(key.verify(b64(Self.a1Signature), for: Self.a1Input))
        #expect(key.algorithm == .hs256)
        #expect(key.kid == "a1")
        #expect(key.publicJWK == nil)
    }

    @Test("RFC 7515 A.1 tampering is rejected")
    func rfc7515A1Tampered() {
        let key = HMACKey(secret: Self.a1Key, kid: "a1")
        let good = b64(Self.a1Signature)

        var input = Array(Self.a1Input.utf8)
        input[input.count - 1] ^= 0x01
        #expect(!key.verify(good, for: input))

        for index in [0, 15, 31] {
            var bad = good
            bad[index] ^= 0x80
            #expect(!key.verify(bad, for: Self.a1Input))
        }
        #expect(!key.verify(Array(good.dropLast()), for: Self.a1Input))
        #expect(!key.verify(good + [0], for: Self.a1Input))
        #expect(!key.verify([], for: Self.a1Input))

        let otherKey = HMACKey(secret: Array(Self.a1Key.dropLast()), kid: "a1")
        #expect(!otherKey.verify(good, for: Self.a1Input))
    }

    @Test("empty input and empty key are well defined")
    func emptyBuffers() throws {
        // HMAC-SHA256 with empty key and empty message, a widely published value.
        let key = HMACKey(secret: [], kid: "e")
        let mac = try key.sign([UInt8]())
        #expect(mac == hex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"))
        #expect(key.verify(mac, for: [UInt8]()))
    }
}

@Test("printing an HMACKey never shows the secret")
func hmacKeyRedacted() {
    let key = HMACKey(secret: Array("s3cr3t-bytes".utf8), kid: "kid1")
    var dumped = ""
    dump(key, to: &dumped)
    for text in [String(describing: key), String(reflecting: key), "\(key)", dumped] {
        #expect(text.contains("kid1"))
        #expect(!text.contains("115")) // "s" as a decimal byte
        #expect(!text.contains("s3cr3t"))
    }
}
