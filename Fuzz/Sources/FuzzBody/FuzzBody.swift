import AuthCore
import FuzzSupport

@_cdecl("FuzzBody_main")  // see runLibFuzzer
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzBody)
}

/// The input as a request body: the strict JSON parser, then the validation of the
/// register/login and refresh/logout bodies.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))

    if let value = try? JSONParser.parse(input) {
        check(String(validating: input, as: UTF8.self) != nil, "parser accepted invalid UTF-8")
        let text = serialize(value)
        let again = try? JSONParser.parse(text)
        check(again == value, "round trip changed \(value) into \(String(describing: again)) via \(String(decoding: text, as: UTF8.self))")
    }

    let request = Request(method: "POST", path: "/auth/register", contentType: "application/json", body: input)
    let object: [String: JSONValue]
    do {
        object = try Validation.jsonObject(request)
    } catch {
        check(error.status == 400, "body refused with \(error.status)")
        return 0
    }
    do {
        let (username, password) = try Validation.credentials(request)
        checkUsername(username)
        check(Validation.passwordBytes.contains(password.utf8.count) && !password.utf8.contains(0), "password \(password) accepted")
        check(object["password"] == .string(password), "password changed by validation")
    } catch {
        check(error.status == 422, "credentials refused with \(error.status): \(error.message)")
    }
    do {
        let token = try Validation.string(object, "refreshToken")
        check(object["refreshToken"] == .string(token), "refreshToken changed")
    } catch {
        check(error.status == 400, "refreshToken refused with \(error.status)")
    }
    // Any text as a username, as if it had been a JSON string.
    if let username = try? Validation.normalizedUsername(String(decoding: input, as: UTF8.self)) { checkUsername(username) }
    return 0
}

/// 3–64 of `a-z 0-9 . _ -`, and normalizing again changes nothing.
func checkUsername(_ name: String) {
    check(Validation.usernameLength.contains(name.utf8.count)
          && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D },
          "username \(name.debugDescription) accepted")
    check((try? Validation.normalizedUsername(name)) == name, "normalizing \(name.debugDescription) twice differs")
}

/// JSON text for `value`. JSONWriter writes only object members, so the structure is written
/// here; every string and key goes through JSONWriter's escaping, which must agree with the parser.
func serialize(_ value: JSONValue) -> [UInt8] {
    switch value {
    case .null: return Array("null".utf8)
    case .bool(let b): return Array((b ? "true" : "false").utf8)
    case .number(let d): return Array("\(d)".utf8)  // Swift prints the shortest text that reads back exactly
    case .string(let s): return quoted(s)
    case .array(let items):
        return [UInt8(ascii: "[")] + items.map(serialize).joined(separator: [UInt8(ascii: ",")]) + [UInt8(ascii: "]")]
    case .object(let members):
        let parts = members.map { quoted($0.key) + [UInt8(ascii: ":")] + serialize($0.value) }
        return [UInt8(ascii: "{")] + parts.joined(separator: [UInt8(ascii: ",")]) + [UInt8(ascii: "}")]
    }
}

/// `s` as JSONWriter quotes it: the value of `{"":…}` with the braces and empty key cut off.
func quoted(_ s: String) -> [UInt8] {
    var w = JSONWriter()
    w.beginObject()
    w.field("", s)
    w.endObject()
    return Array(w.bytes[4..<(w.bytes.count - 1)])
}
