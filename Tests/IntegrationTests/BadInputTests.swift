import Foundation
import Testing

/// The routes that take a JSON body.
enum BodyRoute: String, CaseIterable, Sendable {
    case register, login, refresh, logout, password, account

    var method: String { self == .logout || self == .account ? "DELETE" : "POST" }
    var path: String {
        switch self {
        case .register: "/auth/register"
        case .login: "/auth/login"
        case .refresh: "/auth/refresh-token"
        case .logout: "/auth/logout"
        case .password: "/auth/password"
        case .account: "/auth/account"
        }
    }
    var successStatus: Int {
        switch self {
        case .register: 201
        case .login, .refresh: 200
        case .logout, .password, .account: 204
        }
    }

    /// A body that succeeds on this route, as ordered fields, and the access token the
    /// route needs (nil: none).
    func validRequest(on stack: Stack) throws -> (fields: [(String, String)], bearer: String?) {
        switch self {
        case .password:
            let user = try stack.newUser("bi")
            return ([("currentPassword", user.password), ("newPassword", "a new password for bi")], user.tokens.access)
        case .account:
            let user = try stack.newUser("bi")
            return ([("password", user.password)], user.tokens.access)
        default:
            return (try validFields(on: stack), nil)
        }
    }

    /// A body that succeeds on this route (a fresh user for register; an existing
    /// user's credentials or current refresh token otherwise), as ordered fields.
    /// The routes that need an access token: `validRequest`.
    func validFields(on stack: Stack) throws -> [(String, String)] {
        switch self {
        case .password, .account: return try validRequest(on: stack).fields
        case .register: return [("username", uniqueName("bi")), ("password", validPassword)]
        case .login:
            let user = try stack.newUser("bi")
            return [("username", user.username), ("password", user.password)]
        case .refresh, .logout:
            return [("refreshToken", try stack.newUser("bi").tokens.refresh)]
        }
    }
}

/// One malformed request body or header; applied to a route's valid fields.
enum BadInput: String, CaseIterable, Sendable {
    case malformedJSON, truncatedJSON, trailingGarbage, singleQuotes
    case arrayBody, stringBody, numberBody, nullBody, trueBody
    case emptyBody, noBody, whitespaceBody
    case missingContentType, textPlain, formEncoded, jsonLookalikeContentType
    case invalidUTF8InString, overlongUTF8InString, invalidUTF8OutsideString, latin1InString
    case rawNULInString, escapedNULInString, loneSurrogateEscape
    case firstFieldNumber, firstFieldNull, firstFieldArray, firstFieldObject, firstFieldBool
    case lastFieldNull, hugeNumber
    case deeplyNestedArray, deeplyNestedObject
    case body17KiB

    /// The body and the Content-Type to send (nil: none).
    func request(_ fields: [(String, String)]) -> (body: [UInt8]?, contentType: String?) {
        let json = "application/json"
        let valid = Self.object(fields.map { ($0.0, Self.quoted($0.1)) })
        let first = fields[0].0
        func replacingFirst(_ raw: [UInt8]) -> [UInt8] {
            Array("{\"\(first)\":".utf8) + raw + Array(fields.dropFirst().map { ",\"\($0.0)\":\(Self.quoted($0.1))" }.joined().utf8) + Array("}".utf8)
        }
        switch self {
        case .malformedJSON: return (Array("{\"\(first)\": }".utf8), json)
        case .truncatedJSON: return (Array(valid.dropLast(5)), json)
        case .trailingGarbage: return (valid + Array(" junk".utf8), json)
        case .singleQuotes: return (Array(String(decoding: valid, as: UTF8.self).replacingOccurrences(of: "\"", with: "'").utf8), json)
        case .arrayBody: return (Array("[".utf8) + valid + Array("]".utf8), json)
        case .stringBody: return (Array("\"hello\"".utf8), json)
        case .numberBody: return (Array("42".utf8), json)
        case .nullBody: return (Array("null".utf8), json)
        case .trueBody: return (Array("true".utf8), json)
        case .emptyBody: return ([], json)
        case .noBody: return (nil, nil)
        case .whitespaceBody: return (Array("  \r\n\t ".utf8), json)
        case .missingContentType: return (valid, nil)
        case .textPlain: return (valid, "text/plain")
        case .formEncoded:
            return (Array(fields.map { "\($0.0)=\($0.1)" }.joined(separator: "&").utf8), "application/x-www-form-urlencoded")
        case .jsonLookalikeContentType: return (valid, "application/jsonx")
        case .invalidUTF8InString: return (replacingFirst([0x22, 0x61, 0x62, 0xFF, 0xFE, 0x63, 0x22]), json)
        case .overlongUTF8InString: return (replacingFirst([0x22, 0x61, 0x62, 0xC0, 0xAF, 0x63, 0x22]), json)
        case .invalidUTF8OutsideString: return ([0xFF] + valid, json)
        case .latin1InString: return (replacingFirst([0x22, 0x61, 0x62, 0xE9, 0x63, 0x64, 0x22]), json)
        case .rawNULInString: return (replacingFirst([0x22, 0x61, 0x62, 0x00, 0x63, 0x64, 0x22]), json)
        case .escapedNULInString: return (replacingFirst(Array(#""abc\u0000def""#.utf8)), json)
        case .loneSurrogateEscape: return (replacingFirst(Array(#""abc\ud800def""#.utf8)), json)
        case .firstFieldNumber: return (replacingFirst(Array("12345678".utf8)), json)
        case .firstFieldNull: return (replacingFirst(Array("null".utf8)), json)
        case .firstFieldArray: return (replacingFirst(Array("[\"abc\"]".utf8)), json)
        case .firstFieldObject: return (replacingFirst(Array("{\"value\":\"abc\"}".utf8)), json)
        case .firstFieldBool: return (replacingFirst(Array("true".utf8)), json)
        case .lastFieldNull:
            return (Self.object(fields.dropLast().map { ($0.0, Self.quoted($0.1)) } + [(fields.last!.0, "null")]), json)
        case .hugeNumber: return (replacingFirst(Array("1e999999".utf8)), json)
        case .deeplyNestedArray:
            return (replacingFirst(Array((String(repeating: "[", count: 7000) + String(repeating: "]", count: 7000)).utf8)), json)
        case .deeplyNestedObject:
            return (replacingFirst(Array((String(repeating: "{\"a\":", count: 2500) + "1" + String(repeating: "}", count: 2500)).utf8)), json)
        case .body17KiB:
            let padding = String(repeating: "x", count: 17 * 1024)
            return (Self.object(fields.map { ($0.0, Self.quoted($0.1)) } + [("padding", Self.quoted(padding))]), json)
        }
    }

    static func quoted(_ s: String) -> String {
        String(decoding: jsonBytes(s), as: UTF8.self)
    }

    static func object(_ members: [(String, String)]) -> [UInt8] {
        Array(("{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}").utf8)
    }
}

@Suite("Bad input on every body route")
struct BadInputTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    /// The control: the valid body every bad case is made from succeeds.
    @Test(arguments: BodyRoute.allCases)
    func validBodySucceeds(route: BodyRoute) throws {
        let (fields, bearer) = try route.validRequest(on: stack)
        let response = try stack.call(route.method, route.path, body: BadInput.object(fields.map { ($0.0, BadInput.quoted($0.1)) }),
                                      bearer: bearer)
        #expect(response.status == route.successStatus, "\(response)")
    }

    @Test(arguments: BodyRoute.allCases, BadInput.allCases)
    func badInputIsAClientErrorInTheErrorShape(route: BodyRoute, input: BadInput) throws {
        let (fields, bearer) = try route.validRequest(on: stack)
        let (body, contentType) = input.request(fields)
        let response = try stack.call(route.method, route.path, body: body, contentType: contentType, bearer: bearer)
        if input == .body17KiB {
            expectError(response, status: 413)
        } else {
            expectClientError(response)
            #expect(response.status != 404 && response.status != 405, "\(response)")
        }
    }

    @Test func serviceIsStillHealthyAfterTheMatrix() throws {
        // Run the nastiest bodies again in a burst, then ask for health.
        let bodies: [BadInput] = [.deeplyNestedArray, .deeplyNestedObject, .invalidUTF8InString, .rawNULInString, .body17KiB]
        let statuses = concurrently(bodies.count * 4) { i in
            let (body, contentType) = bodies[i % bodies.count].request([("username", "abc"), ("password", "abcdefghij")])
            return statusOf { try stack.call("POST", "/auth/register", body: body, contentType: contentType) }
        }
        #expect(statuses.allSatisfy { (400..<500).contains($0) }, "\(statuses)")
        #expect(try stack.call("GET", "/healthz").status == 200)
        #expect(try stack.call("GET", "/readyz").status == 200)
    }

    /// A body of exactly 16 KiB is within the limit; one byte more is not.
    @Test(arguments: [(16 * 1024, 201), (16 * 1024 + 1, 413)])
    func bodySizeLimitIs16KiB(size: Int, status: Int) throws {
        let name = uniqueName("pad")
        let prefix = #"{"username":"\#(name)","password":"\#(validPassword)","padding":""#
        let suffix = #""}"#
        let padding = String(repeating: "p", count: size - prefix.utf8.count - suffix.utf8.count)
        let body = Array((prefix + padding + suffix).utf8)
        try #require(body.count == size)
        let response = try stack.call("POST", "/auth/register", body: body)
        if status == 413 { expectError(response, status: 413) } else { #expect(response.status == status, "\(response)") }
    }

    @Test(arguments: BodyRoute.allCases, ["application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"])
    func jsonContentTypeVariantsAreAccepted(route: BodyRoute, contentType: String) throws {
        let (fields, bearer) = try route.validRequest(on: stack)
        let body = BadInput.object(fields.map { ($0.0, BadInput.quoted($0.1)) })
        let response = try stack.call(route.method, route.path, body: body, contentType: contentType, bearer: bearer)
        #expect(response.status == route.successStatus, "\(response)")
    }

    @Test func hugeBodyIs413InTheErrorShape() throws {
        let body = Array(repeating: UInt8(ascii: "a"), count: 1 << 20)
        expectError(try stack.call("POST", "/auth/register", body: body), status: 413)
    }
}
