/// Base64url without padding (RFC 4648 §5), as JWS uses it (RFC 7515 §2).
public enum Base64URL {
    /// The character for a 6-bit value (A-Z a-z 0-9 - _).
    @inline(__always)
    static func character(_ v: UInt8) -> UInt8 {
        v < 26 ? v &+ 65 : v < 52 ? v &+ 71 : v < 62 ? v &- 4 : v == 62 ? 45 : 95
    }

    /// The 6-bit value of a base64url character, 0xFF for any other byte. Branches, not a
    /// table: no lazy-global check and no bounds check on the token path.
    @inline(__always)
    static func value(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c &- 65
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c &- 71
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c &+ 4
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: 0xFF
        }
    }

    public static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        let n = bytes.count
        let length = n / 3 * 4 + [0, 2, 3][n % 3]
        return String(unsafeUninitializedCapacity: length) { out in
            var o = 0
            var it = bytes.makeIterator()
            while let b0 = it.next() {
                let b1 = it.next(), b2 = it.next()
                out[o] = character(b0 >> 2)
                out[o + 1] = character((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)
                o += 2
                guard let b1 else { break }
                out[o] = character((b1 & 0x0F) << 2 | (b2 ?? 0) >> 6)
                o += 1
                guard let b2 else { break }
                out[o] = character(b2 & 0x3F)
                o += 1
            }
            return o
        }
    }

    /// Decodes unpadded base64url. Nil for any byte outside the alphabet, for padding,
    /// for an impossible length, and for non-zero trailing bits (so that every byte
    /// string has exactly one encoding and a token cannot be altered invisibly).
    public static func decode<Bytes: Collection<UInt8>>(_ text: Bytes) -> [UInt8]? {
        let n = text.count
        if n % 4 == 1 { return nil }
        var out = [UInt8]()
        out.reserveCapacity(n * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in text {
            let v = value(c)
            if v == 0xFF { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        if acc & ((1 << UInt32(bits)) - 1) != 0 { return nil }
        return out
    }

    public static func decode(_ text: String) -> [UInt8]? { decode(Array(text.utf8)) }
}
