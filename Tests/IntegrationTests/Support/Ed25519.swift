import Foundation

/// Verifies an Ed25519 signature with the `openssl` command (OpenSSL 3): the test
/// target links no crypto library, and an independent implementation is the point.
func ed25519Verify(publicKey: [UInt8], message: [UInt8], signature: [UInt8]) throws -> Bool {
    guard publicKey.count == 32 else { return false }
    let dir = try Stack.makeTempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // SubjectPublicKeyInfo for Ed25519 (RFC 8410): fixed 12-byte prefix + the 32-byte key.
    let spki: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00] + publicKey
    let pem = "-----BEGIN PUBLIC KEY-----\n\(Data(spki).base64EncodedString())\n-----END PUBLIC KEY-----\n"
    try pem.write(toFile: dir + "/pub.pem", atomically: true, encoding: .utf8)
    try Data(message).write(to: URL(fileURLWithPath: dir + "/msg"))
    try Data(signature).write(to: URL(fileURLWithPath: dir + "/sig"))
    let result = try runCommand(
        "openssl",
        ["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile", "sig"],
        directory: dir)
    return result.termination == .exited(0)
}
