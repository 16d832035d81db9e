import Foundation
import Testing

@Suite("POST /auth/register")
struct RegisterTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func createsUserAndAnswers201WithTokenPair() throws {
        let response = try stack.register(uniqueName("reg"), validPassword)
        let pair = try expectTokens(response, status: 201)
        #expect(pair.access != pair.refresh)
    }

    @Test func registrationStartsAUsableSession() throws {
        let user = try stack.newUser("regsess")
        #expect(try stack.home(user.tokens.access).status == 200)
        _ = try expectTokens(try stack.refresh(user.tokens.refresh), status: 200)
    }

    @Test func duplicateUsernameIs409() throws {
        let user = try stack.newUser("dup")
        let again = try stack.register(user.username, "another password")
        expectError(again, status: 409)
    }

    enum NameVariant: String, CaseIterable, Sendable {
        case upperCase, surroundingSpaces, tabsNewlineAndUpperCase, capitalised
        func apply(_ name: String) -> String {
            switch self {
            case .upperCase: name.uppercased()
            case .surroundingSpaces: "  \(name)  "
            case .tabsNewlineAndUpperCase: "\t\(name.uppercased()) \n"
            case .capitalised: name.prefix(1).uppercased() + name.dropFirst()
            }
        }
    }

    @Test(arguments: NameVariant.allCases)
    func duplicateDifferingInCaseOrSurroundingSpaceIs409(variant: NameVariant) throws {
        let user = try stack.newUser("dupcase")
        expectError(try stack.register(variant.apply(user.username), validPassword), status: 409)
    }

    @Test func thirtyParallelRegistrationsOfOneNameGiveExactlyOne201() throws {
        let name = uniqueName("race")
        let statuses = concurrently(30) { _ in statusOf { try stack.register(name, validPassword) } }
        #expect(statuses.filter { $0 == 201 }.count == 1, "\(statuses.sorted())")
        #expect(statuses.filter { $0 == 409 }.count == 29, "\(statuses.sorted())")
    }

    @Test func usernameIsStoredTrimmedAndLowerCased() throws {
        let canonical = uniqueName("mixed")
        let response = try stack.register("  \(canonical.uppercased())\t", validPassword)
        let pair = try expectTokens(response, status: 201)
        let me = try stack.me(pair.access)
        #expect(me.status == 200)
        #expect(me.object?["username"] as? String == canonical)
        #expect(try stack.login(canonical, validPassword).status == 200)
    }

    @Test(arguments: [
        "ab",  // too short
        String(repeating: "a", count: 65),  // too long
        "   ",  // empty once trimmed
        "",
        "has space",
        "bad!",
        "user@example.com",
        "slash/name",
        "ünïcode",
        "emoji😀x",
        "tab\tin",
    ])
    func invalidUsernameIs422NamingTheField(username: String) throws {
        let response = try stack.register(username, validPassword)
        expectError(response, status: 422)
        #expect(errorMessage(response).contains("username"), "message does not name the field: \(response)")
    }

    @Test(arguments: [3, 64])
    func usernameLengthBoundsAreAccepted(length: Int) throws {
        let name = String(uniqueName("b").prefix(length)).padding(toLength: length, withPad: "x", startingAt: 0)
        let response = try stack.register(name, validPassword)
        // 3-character names are few; a collision with another run's name is impossible
        // (fresh Redis), with another test's name very unlikely and visible as 409.
        #expect(response.status == 201, "\(name): \(response)")
    }

    @Test func usernameMayUseDotUnderscoreHyphenAndDigits() throws {
        let name = uniqueName("a.b_c-9")
        _ = try expectTokens(try stack.register(name, validPassword), status: 201)
    }

    @Test func passwordShorterThan8Is422WithJoiMessage() throws {
        let response = try stack.register(uniqueName("short"), "1234567")
        expectError(response, status: 422, message: "\"password\" length must be at least 8 characters long")
    }

    @Test func passwordOf8CharactersIsAccepted() throws {
        #expect(try stack.register(uniqueName("pw8"), "12345678").status == 201)
    }

    @Test(arguments: [
        (String(repeating: "a", count: 72), true),
        (String(repeating: "a", count: 73), false),
        (String(repeating: "é", count: 36), true),  // 72 bytes in UTF-8
        (String(repeating: "é", count: 37), false),  // 74 bytes: 37 characters is not the measure
        (String(repeating: "a", count: 71) + "é", false),  // 73 bytes
        (String(repeating: "€", count: 24), true),  // 72 bytes
        (String(repeating: "€", count: 25), false),  // 75 bytes
    ])
    func passwordIsLimitedTo72BytesOfUTF8(password: String, accepted: Bool) throws {
        let response = try stack.register(uniqueName("pwlen"), password)
        if accepted {
            _ = try expectTokens(response, status: 201)
        } else {
            expectError(response, status: 422)
            #expect(errorMessage(response).contains("password"), "\(response)")
        }
    }

    @Test func longPasswordIsNotTruncated() throws {
        // bcrypt ignores bytes after 72; a service that truncated would accept 72 + anything.
        let user = try stack.newUser("trunc", password: String(repeating: "p", count: 72))
        let response = try stack.login(user.username, user.password + "x")
        #expect(response.status == 400 || response.status == 401, "\(response)")
    }

    @Test(arguments: ["abcd\u{0}efgh", "\u{0}abcdefgh", "abcdefgh\u{0}"])
    func passwordWithNULIs422(password: String) throws {
        let response = try stack.register(uniqueName("nul"), password)
        expectError(response, status: 422)
        #expect(errorMessage(response).contains("password"), "\(response)")
    }

    @Test func missingUsernameIs422NamingIt() throws {
        let response = try stack.call("POST", "/auth/register", json: ["password": validPassword])
        expectError(response, status: 422)
        #expect(errorMessage(response).contains("username"), "\(response)")
    }

    @Test func missingPasswordIs422NamingIt() throws {
        let response = try stack.call("POST", "/auth/register", json: ["username": uniqueName("nopw")])
        expectError(response, status: 422)
        #expect(errorMessage(response).contains("password"), "\(response)")
    }

    @Test func unknownExtraFieldsAreIgnored() throws {
        let name = uniqueName("extra")
        let response = try stack.call("POST", "/auth/register", json: [
            "username": name, "password": validPassword,
            "role": "admin", "isAdmin": true, "nested": ["x": [1, 2, 3]], "id": "00000000",
        ])
        let pair = try expectTokens(response, status: 201)
        let me = try stack.me(pair.access)
        #expect(me.object?["username"] as? String == name)
        #expect(me.object?["id"] as? String != "00000000")
    }
}

/// The `error.message` of an error answer, lower-cased ("" when absent).
func errorMessage(_ response: HTTPResponse) -> String {
    ((response.object?["error"] as? [String: Any])?["message"] as? String ?? "").lowercased()
}
