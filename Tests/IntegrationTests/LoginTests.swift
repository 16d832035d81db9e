import Foundation
import Testing

@Suite("POST /auth/login")
struct LoginTests {
    let stack: Stack
    init() throws { stack = try Stacks.standard() }

    @Test func answers200WithANewPair() throws {
        let user = try stack.newUser("login")
        let pair = try expectTokens(try stack.login(user.username, user.password), status: 200)
        #expect(pair.access != user.tokens.access)
        #expect(pair.refresh != user.tokens.refresh)
        #expect(try stack.home(pair.access).status == 200)
        _ = try stack.rotate(pair.refresh)
    }

    @Test func usernameIsCaseInsensitiveAndTrimmed() throws {
        let user = try stack.newUser("logincase")
        _ = try expectTokens(try stack.login("  \(user.username.uppercased())\t", user.password), status: 200)
    }

    @Test func passwordIsCaseSensitive() throws {
        let user = try stack.newUser("pwcase")
        expectError(try stack.login(user.username, user.password.uppercased()), status: 401,
                    message: "Username/password not valid")
    }

    @Test func wrongPasswordIs401() throws {
        let user = try stack.newUser("wrongpw")
        expectError(try stack.login(user.username, "not the password"), status: 401,
                    message: "Username/password not valid")
    }

    @Test func unknownUserIs401WithTheSameMessage() throws {
        expectError(try stack.login(uniqueName("ghost"), validPassword), status: 401,
                    message: "Username/password not valid")
    }

    @Test(arguments: [
        ["username": "ab", "password": validPassword],
        ["username": String(repeating: "a", count: 65), "password": validPassword],
        ["username": "bad name", "password": validPassword],
        ["username": "someone", "password": "short"],
        ["username": "someone", "password": String(repeating: "a", count: 73)],
        ["username": "someone", "password": "abc\u{0}defghi"],
        ["username": "someone"],
        ["password": validPassword],
        [:],
    ] as [[String: String]])
    func bodyFailingValidationIs400(body: [String: String]) throws {
        let response = try stack.call("POST", "/auth/login", json: body)
        expectError(response, status: 400, message: "Invalid username/password")
    }

    @Test(arguments: [
        #"{"username":42,"password":"correct horse battery"}"#,
        #"{"username":"someone","password":null}"#,
        #"{"username":["someone"],"password":"correct horse battery"}"#,
        #"{"username":"someone","password":12345678}"#,
    ])
    func fieldOfWrongTypeIs400(body: String) throws {
        let response = try stack.call("POST", "/auth/login", body: Array(body.utf8))
        expectError(response, status: 400)
    }

    @Test func eachLoginStartsAnotherSession() throws {
        let user = try stack.newUser("multi")
        let first = try stack.newSession(user)
        let second = try stack.newSession(user)
        #expect(try JWT(first.refresh).string("sid") != JWT(second.refresh).string("sid"))
        // A login does not end the sessions before it (one session per device).
        _ = try stack.rotate(user.tokens.refresh)
        _ = try stack.rotate(first.refresh)
        _ = try stack.rotate(second.refresh)
    }
}

@Suite("POST /auth/login timing")
struct LoginTimingTests {
    /// With a realistic bcrypt cost, an unknown user must cost about as much as a wrong
    /// password; a service that skips bcrypt for unknown users answers ~50x faster.
    @Test func unknownUserTakesAsLongAsWrongPassword() throws {
        let stack = try Stacks.realisticBcrypt()
        let user = try stack.newUser("timing")
        var unknown: [Double] = []
        var wrong: [Double] = []
        for _ in 0..<7 {
            unknown.append(try timed { try stack.login(uniqueName("nobody"), validPassword) })
            wrong.append(try timed { try stack.login(user.username, "wrong password") })
        }
        let (u, w) = (median(unknown), median(wrong))
        #expect(u > w * 0.5 && w > u * 0.5, "median unknown user \(u) s, wrong password \(w) s")
    }

    /// Seconds a login took; it must be a 401.
    private func timed(_ login: () throws -> HTTPResponse) throws -> Double {
        let start = Date()
        let response = try login()
        let elapsed = Date().timeIntervalSince(start)
        #expect(response.status == 401, "\(response)")
        return elapsed
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
