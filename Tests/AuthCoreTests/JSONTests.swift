import Testing
@testable import AuthCore

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesEveryKindOfValue() throws {
        let v = try parse(#" {"s":"a\"b\\c\u00e9\ud83d\ude00","n":-1.5e2,"t":true,"f":false,"z":null,"a":[1,{}]} "#)
        #expect(v == .object([
            "s": .string("a\"b\\cé😀"), "n": .number(-150), "t": .bool(true), "f": .bool(false),
            "z": .null, "a": .array([.number(1), .object([:])]),
        ]))
    }

    @Test(arguments: [
        "", "{", "}", "{\"a\":}", "{\"a\" 1}", "{'a':1}", "{\"a\":1,}", "[1,]", "01", "1.", "-", "1e",
        "tru", "nul", "{\"a\":1}x", "\"\\x\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{1}\"",
        "{\"a\":1,\"a\":2}", "1e999", "/*c*/{}",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONError.self) { try parse(text) }
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],                // invalid byte
        [0x22, 0xC0, 0xAF, 0x22],          // overlong "/"
        [0x22, 0xED, 0xA0, 0x80, 0x22],    // UTF-16 surrogate encoded in UTF-8
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], // above U+10FFFF
        [0x22, 0xE2, 0x82, 0x22],          // truncated sequence
    ] as [[UInt8]])
    func rejectsInvalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: JSONError.self) { try JSONParser.parse(bytes) }
    }

    /// Found by schemathesis: keys equal only under Unicode canonical equivalence are
    /// distinct JSON keys, not duplicates; byte-equal ones still are.
    @Test func duplicateKeysAreByteEqualKeys() throws {
        #expect(throws: Never.self) { try JSONParser.parse(Array(#"{"\u00e9":1,"e\u0301":2,"\u212a":3,"K":4}"#.utf8)) }
        #expect(throws: JSONError.self) { try JSONParser.parse(Array(#"{"\u00e9":1,"\u00e9":2}"#.utf8)) }
        #expect(throws: JSONError.self) { try JSONParser.parse(Array(#"{"a":1,"\u0061":2}"#.utf8)) }
    }

    /// A space followed by a combining mark is one white-space Character: trimming by
    /// Characters dropped the mark; by scalars, the mark stays and the name is refused.
    @Test func usernameTrimmingKeepsCombiningMarks() throws {
        #expect(try Validation.normalizedUsername("  Bob\t") == "bob")
        #expect(throws: APIError.self) { try Validation.normalizedUsername("bob-comb \u{301}") }
        #expect(throws: APIError.self) { try Validation.normalizedUsername(" \u{301}bob-lead") }
        #expect(throws: APIError.self) { try Validation.normalizedUsername(" \u{3000} ") }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONError.self) { try parse(deep) }
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        _ = try parse(ok)
    }

    @Test func writerEscapesAndRoundTrips() throws {
        var w = JSONWriter()
        w.beginObject()
        w.field("k", "quote\" back\\ nl\n tab\t ctl\u{1} del\u{7F} é")
        w.field("n", Int64(-42))
        w.field("b", true)
        w.beginArray("a")
        w.beginObject(); w.field("x", 1); w.endObject()
        w.endArray()
        w.endObject()
        let text = String(decoding: w.bytes, as: UTF8.self)
        #expect(text == #"{"k":"quote\" back\\ nl\n tab\t ctl\u0001 del\u007f é","n":-42,"b":true,"a":[{"x":1}]}"#)
        #expect(try JSONParser.parse(w.bytes) == .object([
            "k": .string("quote\" back\\ nl\n tab\t ctl\u{1} del\u{7F} é"), "n": .number(-42), "b": .bool(true),
            "a": .array([.object(["x": .number(1)])]),
        ]))
    }
}

@Suite struct Base64URLTests {
    // RFC 4648 §10 vectors, in the URL-safe alphabet without padding.
    @Test(arguments: [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
                      ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")])
    func rfc4648Vectors(_ plain: String, _ encoded: String) {
        #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        #expect(Base64URL.decode(encoded) == Array(plain.utf8))
    }

    @Test func usesTheURLAlphabet() {
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.decode("-_-_") == [0xFB, 0xFF, 0xBF])
    }

    @Test(arguments: ["Zg==", "Z", "Zm9v+", "Zm9v/", "Zm9 v", "Zh"])
    func rejectsNonCanonical(_ text: String) {
        // Padding, standard-alphabet characters, impossible lengths, non-zero trailing bits.
        #expect(Base64URL.decode(text) == nil)
    }
}

extension Base64URLTests {
    @Test func everyByteValueRoundTrips() {
        let all = (0...255).map { UInt8($0) }
        for n in 0..<4 {
            let bytes = Array(all.dropFirst(n))
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.encode([0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92, 0x8B, 0x30, 0xD3, 0x8F, 0x41, 0x14, 0x93, 0x51, 0x55, 0x97,
                                  0x61, 0x96, 0x9B, 0x71, 0xD7, 0x9F, 0x82, 0x18, 0xA3, 0x92, 0x59, 0xA7, 0xA2, 0x9A, 0xAB, 0xB2, 0xDB, 0xAF,
                                  0xC3, 0x1C, 0xB3, 0xD3, 0x5D, 0xB7, 0xE3, 0x9E, 0xBB, 0xF3, 0xDF, 0xBF])
                == "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    }
}
