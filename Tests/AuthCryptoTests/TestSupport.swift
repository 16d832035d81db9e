import AuthCore
import AuthCrypto

/// Decodes lowercase/uppercase hex; traps on malformed fixtures.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    precondition(digits.count % 2 == 0, "odd-length hex fixture")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: preconditionFailure("bad hex digit in fixture")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

func b64(_ text: String) -> [UInt8] {
    guard let bytes = Base64URL.decode(text) else { preconditionFailure("bad base64url fixture") }
    return bytes
}

extension SigningKey {
    func sign(_ bytes: [UInt8]) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try sign($0) }
    }
    func sign(_ text: String) throws -> [UInt8] { try sign(Array(text.utf8)) }
    func verify(_ signature: [UInt8], for bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { verify(signature, for: $0) }
    }
    func verify(_ signature: [UInt8], for text: String) -> Bool { verify(signature, for: Array(text.utf8)) }
}
