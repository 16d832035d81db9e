import Foundation

enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map { Array($0) }
    }
}

/// A JWS compact token taken apart (no verification), and the means to build one.
struct JWT {
    let token: String
    let segments: [String]
    let header: [String: Any]
    let payload: [String: Any]
    let signature: [UInt8]

    init(_ token: String) throws {
        self.token = token
        segments = token.components(separatedBy: ".")
        guard segments.count == 3 else { throw HarnessError("not a JWS compact token: \(token)") }
        guard
            let headerBytes = Base64URL.decode(segments[0]),
            let header = try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
            let payloadBytes = Base64URL.decode(segments[1]),
            let payload = try JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any],
            let signature = Base64URL.decode(segments[2])
        else { throw HarnessError("token segments are not base64url JSON: \(token)") }
        self.header = header
        self.payload = payload
        self.signature = signature
    }

    var signingInput: String { segments[0] + "." + segments[1] }

    func string(_ claim: String) -> String? { payload[claim] as? String }
    func int(_ claim: String) -> Int? { (payload[claim] as? NSNumber)?.intValue }
    var kid: String? { header["kid"] as? String }

    /// Serialises header and payload and signs them with HMAC-SHA256 under `key`;
    /// `key == nil` gives an empty signature (as `alg: none` tokens have).
    static func make(header: [String: Any], payload: [String: Any], hmacKey key: String?) -> String {
        let encodedHeader = Base64URL.encode(jsonBytes(header))
        let encodedPayload = Base64URL.encode(jsonBytes(payload))
        let input = encodedHeader + "." + encodedPayload
        guard let key else { return input + "." }
        let mac = SHA256.hmac(key: Array(key.utf8), message: Array(input.utf8))
        return input + "." + Base64URL.encode(mac)
    }

    static func make(header: [String: Any], payload: [String: Any], hmacKeyBytes key: [UInt8]) -> String {
        let input = Base64URL.encode(jsonBytes(header)) + "." + Base64URL.encode(jsonBytes(payload))
        return input + "." + Base64URL.encode(SHA256.hmac(key: key, message: Array(input.utf8)))
    }

    /// A copy of this token with changed header/payload members, re-signed with `key`.
    func resigned(
        header changes: [String: Any?] = [:], payload payloadChanges: [String: Any?] = [:], hmacKey key: String?
    ) -> String {
        JWT.make(header: Self.apply(changes, to: header), payload: Self.apply(payloadChanges, to: payload), hmacKey: key)
    }

    private static func apply(_ changes: [String: Any?], to object: [String: Any]) -> [String: Any] {
        var result = object
        for (name, value) in changes {
            if let value { result[name] = value } else { result.removeValue(forKey: name) }
        }
        return result
    }
}

func jsonBytes(_ object: Any) -> [UInt8] {
    Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]))
}

/// Seconds since the epoch.
var now: Int { Int(Date().timeIntervalSince1970) }
