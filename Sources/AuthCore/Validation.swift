/// Request-body validation: the joi schema of the original design, tightened (docs/API.md).
public enum Validation {
    public static let usernameLength = 3...64
    public static let passwordBytes = 8...72

    /// The JSON object of a request body, or a 4xx telling the client what is wrong.
    public static func jsonObject(_ request: Request) throws(APIError) -> [String: JSONValue] {
        guard let type = request.contentType, isJSON(type) else {
            throw APIError(.unsupportedMediaType, "Content-Type must be application/json")
        }
        guard !request.body.isEmpty else { throw APIError(.badRequest, "Request body must be a JSON object") }
        let value: JSONValue
        do { value = try JSONParser.parse(request.body) } catch {
            throw APIError(.malformedJSON, "Malformed JSON body: \(error.description)")
        }
        guard case .object(let object) = value else {
            throw APIError(.badRequest, "Request body must be a JSON object, not \(value.typeName == "array" ? "an" : "a") \(value.typeName)")
        }
        return object
    }

    /// `application/json`, optionally with parameters (`; charset=utf-8`), case-insensitive.
    static func isJSON(_ contentType: String) -> Bool {
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { String($0).trimmingSpaces.lowercased() }
        return mediaType == "application/json"
    }

    /// The field as a string: `"name" is required` / `"name" must be a string`.
    public static func string(_ object: [String: JSONValue], _ name: String) throws(APIError) -> String {
        switch object[name] {
        case nil: throw APIError(.missingField, "\"\(name)\" is required")
        case .string(let s)?: return s
        case .some: throw APIError(.wrongFieldType, "\"\(name)\" must be a string")
        }
    }

    /// Username and password of a register/login body. Field problems are 422 with
    /// joi-style messages naming the field; body problems (JSON, type) are 400/415.
    public static func credentials(_ request: Request) throws(APIError) -> (username: String, password: String) {
        let object = try jsonObject(request)
        let username = try field(object, "username")
        let password = try field(object, "password")
        return (try normalizedUsername(username), try checkedPassword(password))
    }

    /// A required string field whose absence or type is a 422 naming it.
    public static func field(_ object: [String: JSONValue], _ name: String) throws(APIError) -> String {
        do { return try string(object, name) } catch { throw APIError(.validationFailed, error.message) }
    }

    /// Trimmed, ASCII-lower-cased, 3–64 of `a-z 0-9 . _ -`. Only ASCII letters are folded,
    /// so look-alikes such as U+212A KELVIN SIGN are refused rather than mapped onto "k".
    public static func normalizedUsername(_ raw: String) throws(APIError) -> String {
        // Trimmed by Unicode scalars, not Characters: " \u{301}" is one Character that
        // is white space, and trimming it would drop the combining mark unnoticed.
        let scalars = raw.unicodeScalars
        let first = scalars.firstIndex { !$0.properties.isWhitespace } ?? scalars.endIndex
        let last = scalars.lastIndex { !$0.properties.isWhitespace }
        let trimmed = last.map { String(scalars[first...$0]) } ?? ""
        let lowered = String(decoding: trimmed.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        let count = lowered.unicodeScalars.count
        if count < usernameLength.lowerBound {
            throw APIError(.validationFailed, "\"username\" length must be at least \(usernameLength.lowerBound) characters long")
        }
        if count > usernameLength.upperBound {
            throw APIError(.validationFailed, "\"username\" length must be less than or equal to \(usernameLength.upperBound) characters long")
        }
        let allowed = lowered.utf8.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
        }
        guard allowed else {
            throw APIError(.validationFailed, "\"username\" must only contain the characters a-z, 0-9, '.', '_' and '-'")
        }
        return lowered
    }

    /// 8–72 bytes of UTF-8 (bcrypt's limit: longer input is refused, never truncated), no NUL.
    /// `name` is the field the messages name.
    public static func checkedPassword(_ password: String, field name: String = "password") throws(APIError) -> String {
        let bytes = password.utf8.count
        if bytes < passwordBytes.lowerBound {
            throw APIError(.validationFailed, "\"\(name)\" length must be at least \(passwordBytes.lowerBound) characters long")
        }
        if bytes > passwordBytes.upperBound {
            throw APIError(.validationFailed, "\"\(name)\" length must be less than or equal to \(passwordBytes.upperBound) bytes long in UTF-8 (bcrypt's limit)")
        }
        if password.utf8.contains(0) {
            throw APIError(.validationFailed, "\"\(name)\" must not contain NUL characters")
        }
        return password
    }
}
