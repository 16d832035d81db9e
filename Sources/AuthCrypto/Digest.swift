internal import CLibCrypto

/// One-shot message digests from libcrypto.
public enum Digest {
    /// SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { digest(bytes, EVP_sha256(), 32) }

    /// SHA-1 of `text`'s UTF-8 bytes as 40 lower-case hex digits: the name by which Redis
    /// knows a script (`EVALSHA`). Not for anything that needs collision resistance.
    public static func sha1Hex(_ text: String) -> String {
        digest(Array(text.utf8), EVP_sha1(), 20).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    private static func digest(_ bytes: [UInt8], _ md: OpaquePointer?, _ size: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: size) { out, count in
            var length: UInt32 = 0
            let rc = bytes.withUnsafeBytes { raw in
                raw.withNonNullBytes { data, n in EVP_Digest(data, n, out.baseAddress, &length, md, nil) }
            }
            // EVP_Digest can only fail on allocation failure, where Swift traps anyway;
            // a throwing signature would burden every caller for nothing.
            precondition(rc == 1 && Int(length) == size, "EVP_Digest failed")
            count = size
        }
    }
}
