@testable import AuthCore
import AuthTesting
import Synchronization

/// A keyed checksum standing in for HMAC, so that the verifier's logic is tested without
/// OpenSSL (the real keys have their own vector tests in AuthCryptoTests).
struct ChecksumKey: SigningKey {
    let algorithm: JWTAlgorithm
    let kid: String
    let secret: UInt64
    var publicJWK: [(String, String)]? { algorithm == .edDSA ? [("kty", "OKP"), ("kid", kid)] : nil }

    init(kid: String, secret: UInt64, algorithm: JWTAlgorithm = .hs256) {
        self.kid = kid
        self.secret = secret
        self.algorithm = algorithm
    }

    func sign(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ secret
        for b in input { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return withUnsafeBytes(of: h.bigEndian) { Array($0) }
    }

    func verify(_ signature: [UInt8], for input: UnsafeRawBufferPointer) -> Bool {
        (try? sign(input)) == signature
    }
}

/// Stores the password itself behind a marker; enough to test the handlers' decisions.
struct PlainHasher: PasswordHasher {
    func hash(_ password: String) throws -> String { "plain:" + password }
    func verify(_ password: String, against hash: String) -> Bool { hash == "plain:" + password }
}
