import Foundation
import Testing

/// One entry of `GET /auth/sessions`, parsed without recording issues.
struct SessionEntry: Sendable, CustomStringConvertible {
    let id: String
    let createdAt: String
    let lastUsedAt: String
    let userAgent: String
    let address: String
    let current: Bool
    /// The names of the entry's members, to check that nothing else is exposed.
    let keys: Set<String>

    init?(_ object: Any) {
        guard let entry = object as? [String: Any],
              let id = entry["id"] as? String, let createdAt = entry["createdAt"] as? String,
              let lastUsedAt = entry["lastUsedAt"] as? String, let userAgent = entry["userAgent"] as? String,
              let address = entry["address"] as? String,
              let rawCurrent = entry["current"], isJSONBoolean(rawCurrent), let current = rawCurrent as? Bool
        else { return nil }
        self.id = id
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.userAgent = userAgent
        self.address = address
        self.current = current
        keys = Set(entry.keys)
    }

    /// Unix seconds of `createdAt` / `lastUsedAt`, nil unless `YYYY-MM-DDTHH:MM:SSZ`.
    var createdSeconds: Int? { isoSeconds(createdAt) }
    var lastUsedSeconds: Int? { isoSeconds(lastUsedAt) }

    var description: String {
        "{id \(id) created \(createdAt) used \(lastUsedAt) ua \(userAgent.debugDescription) addr \(address) current \(current)}"
    }
}

/// True for a JSON `true`/`false` as JSONSerialization returns it: numbers bridge to
/// Bool too (`1 as? Bool`), a boolean's dynamic type says which it was.
func isJSONBoolean(_ value: Any) -> Bool {
    String(describing: type(of: value)).contains("Bool")
}

/// Unix seconds of a UTC timestamp written exactly as `2026-11-26T23:40:01Z`; nil otherwise.
func isoSeconds(_ text: String) -> Int? {
    guard text.range(of: #"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"#, options: .regularExpression) != nil
    else { return nil }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text).map { Int($0.timeIntervalSince1970) }
}

/// The `sid` claim of a token (access or refresh): the session it belongs to.
func sessionID(of token: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    try #require(try JWT(token).string("sid"), "no sid in \(token)", sourceLocation: sourceLocation)
}

/// The `sub` claim of a token: the user id.
func userID(of token: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    try #require(try JWT(token).string("sub"), "no sub in \(token)", sourceLocation: sourceLocation)
}

/// True for 22 characters of the base64url alphabet, the shape of a session id.
func isSessionIDShaped(_ id: String) -> Bool {
    id.utf8.count == 22 && id.range(of: "^[A-Za-z0-9_-]{22}$", options: .regularExpression) != nil
}

/// Blocks until the wall clock's whole second is past `second` (for timestamps that must
/// differ between two requests: the server stamps in whole seconds on the same clock).
/// The server reads `time()`, glibc's coarse clock, which lags the precise one by up to a
/// scheduler tick: 50 ms more keep a request sent right after this in the next second.
func waitForSecondAfter(_ second: Int) {
    while Date().timeIntervalSince1970 < Double(second + 1) + 0.05 { usleep(10_000) }
}

/// A flag set once by one thread and read by others.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

extension Stack {
    // MARK: requests with a User-Agent

    func register(_ username: String, _ password: String, userAgent: String?) throws -> HTTPResponse {
        try call("POST", "/auth/register", body: jsonBytes(["username": username, "password": password]),
                 headers: userAgent.map { [("User-Agent", $0)] } ?? [])
    }

    func login(_ username: String, _ password: String, userAgent: String?) throws -> HTTPResponse {
        try call("POST", "/auth/login", body: jsonBytes(["username": username, "password": password]),
                 headers: userAgent.map { [("User-Agent", $0)] } ?? [])
    }

    func refresh(_ refreshToken: String, userAgent: String?) throws -> HTTPResponse {
        try call("POST", "/auth/refresh-token", body: jsonBytes(["refreshToken": refreshToken]),
                 headers: userAgent.map { [("User-Agent", $0)] } ?? [])
    }

    // MARK: the account routes

    /// `GET /auth/sessions` (or `HEAD` with `method`).
    func sessions(_ accessToken: String?, method: String = "GET") throws -> HTTPResponse {
        try call(method, "/auth/sessions", bearer: accessToken)
    }

    /// `GET /auth/sessions?<query>`; `query` is sent as given.
    func sessions(_ accessToken: String?, query: String) throws -> HTTPResponse {
        try call("GET", "/auth/sessions?" + query, bearer: accessToken)
    }

    /// One page: requires 200 and `nextCursor` (a string or null); returns the entries and
    /// the cursor.
    func sessionPage(_ accessToken: String, limit: Int? = nil, cursor: String? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> (entries: [SessionEntry], next: String?) {
        let query = [limit.map { "limit=\($0)" }, cursor.map { "cursor=\($0)" }].compactMap { $0 }.joined(separator: "&")
        let response = try sessions(accessToken, query: query)
        try #require(response.status == 200, "GET /auth/sessions?\(query): \(response)", sourceLocation: sourceLocation)
        let body = try #require(response.object, "\(response)", sourceLocation: sourceLocation)
        let list = try #require(body["sessions"] as? [Any], "no sessions array: \(response)", sourceLocation: sourceLocation)
        let next = body["nextCursor"]
        try #require(next is String || next is NSNull, "nextCursor is neither a string nor null: \(response)",
                     sourceLocation: sourceLocation)
        let entries = try list.map { try #require(SessionEntry($0), "bad session entry \($0)", sourceLocation: sourceLocation) }
        return (entries, next as? String)
    }

    /// Every page of the list, `limit` at a time, following `nextCursor` until it is null.
    func allSessionPages(_ accessToken: String, limit: Int,
                         sourceLocation: SourceLocation = #_sourceLocation) throws -> [[SessionEntry]] {
        var pages: [[SessionEntry]] = []
        var cursor: String?
        repeat {
            let page = try sessionPage(accessToken, limit: limit, cursor: cursor, sourceLocation: sourceLocation)
            pages.append(page.entries)
            cursor = page.next
            try #require(pages.count <= 1000, "nextCursor never ends", sourceLocation: sourceLocation)
        } while cursor != nil
        return pages
    }

    /// `DELETE /auth/sessions/{id}`; `id` is put into the path as given.
    func endSession(_ id: String, _ accessToken: String?) throws -> HTTPResponse {
        try call("DELETE", "/auth/sessions/" + id, bearer: accessToken)
    }

    func changePassword(_ accessToken: String?, current: String, new: String) throws -> HTTPResponse {
        try call("POST", "/auth/password", json: ["currentPassword": current, "newPassword": new], bearer: accessToken)
    }

    func deleteAccount(_ accessToken: String?, password: String) throws -> HTTPResponse {
        try call("DELETE", "/auth/account", json: ["password": password], bearer: accessToken)
    }

    /// Requires 200, `Cache-Control: no-store`, a JSON `{"sessions":[...]}` whose entries
    /// all parse; returns them in the order sent.
    func listSessions(_ accessToken: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [SessionEntry] {
        let response = try sessions(accessToken)
        try #require(response.status == 200, "GET /auth/sessions: \(response)", sourceLocation: sourceLocation)
        #expect(response.header("Cache-Control")?.lowercased().contains("no-store") == true,
                "no Cache-Control: no-store: \(response)", sourceLocation: sourceLocation)
        #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true,
                "\(response)", sourceLocation: sourceLocation)
        let list = try #require(response.object?["sessions"] as? [Any], "no sessions array: \(response)",
                                sourceLocation: sourceLocation)
        return try list.map { try #require(SessionEntry($0), "bad session entry \($0)", sourceLocation: sourceLocation) }
    }

    /// Requires 204 with an empty body, retrying a 503 + Retry-After (password lane full).
    func expectPasswordChanged(_ accessToken: String, current: String, new: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let response = try retryingBusy { try changePassword(accessToken, current: current, new: new) }
        try #require(response.status == 204, "POST /auth/password: \(response)", sourceLocation: sourceLocation)
        #expect(response.body.isEmpty, "204 with a body: \(response)", sourceLocation: sourceLocation)
    }

    func expectAccountDeleted(_ accessToken: String, password: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let response = try retryingBusy { try deleteAccount(accessToken, password: password) }
        try #require(response.status == 204, "DELETE /auth/account: \(response)", sourceLocation: sourceLocation)
        #expect(response.body.isEmpty, "204 with a body: \(response)", sourceLocation: sourceLocation)
    }

    /// The Redis keys whose name contains `text` (redis-cli --scan).
    func redisKeys(containing text: String) throws -> [String] {
        let output = try redisCLI("--scan", "--pattern", "*\(text)*")
        return output.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
}

/// A 401 answering a wrong password given to an authenticated route: the exact message
/// and no `WWW-Authenticate` (the token was fine).
func expectWrongPassword(_ response: HTTPResponse, message: String, sourceLocation: SourceLocation = #_sourceLocation) {
    expectError(response, status: 401, message: message, sourceLocation: sourceLocation)
    #expect(response.header("WWW-Authenticate") == nil, "challenge on a wrong password: \(response)",
            sourceLocation: sourceLocation)
}

/// `request`'s answer once its token is refused as one whose session ended, polled every
/// 5 ms for at most `timeout` s: another authd than the one that ended the session learns
/// of it from Redis's pub/sub (`RevocationFeed`), and so does this one for the ends it
/// does not see itself (logout-all, a password change, a deletion, the session cap).
func expectSessionEndedSoon(timeout: Double = 2, sourceLocation: SourceLocation = #_sourceLocation,
                            _ request: () throws -> HTTPResponse) throws {
    let deadline = Date().addingTimeInterval(timeout)
    var response = try request()
    while response.status != 401, Date() < deadline {
        usleep(5_000)
        response = try request()
    }
    expectSessionEnded(response, sourceLocation: sourceLocation)
}

/// A 401 for a token whose session has ended (ACCESS_TOKEN_SESSION_CHECK=true).
func expectSessionEnded(_ response: HTTPResponse, sourceLocation: SourceLocation = #_sourceLocation) {
    expectError(response, status: 401, message: "Unauthorized", sourceLocation: sourceLocation)
    let challenge = response.header("WWW-Authenticate") ?? ""
    #expect(challenge.hasPrefix("Bearer "), "challenge: \(response)", sourceLocation: sourceLocation)
    #expect(challenge.contains(#"error="invalid_token""#), "challenge: \(response)", sourceLocation: sourceLocation)
    #expect(challenge.contains(#"error_description="The session has ended""#), "challenge: \(response)",
            sourceLocation: sourceLocation)
}

/// Stacks of the account tests with settings of their own.
enum AccountStacks {
    /// Three failed password checks per user name lock it for 120 s; no address limit.
    private static let userThrottled = SharedStack([
        "LOGIN_USER_MAX_FAILURES": "3", "LOGIN_USER_WINDOW": "120", "LOGIN_ADDRESS_MAX_FAILURES": "0",
    ])
    /// Two failed password checks from one address lock it for 60 s; no per-user limit.
    /// Every client of a test stack is 127.0.0.1: one test only may use it.
    private static let addressThrottled = SharedStack([
        "LOGIN_USER_MAX_FAILURES": "0", "LOGIN_ADDRESS_MAX_FAILURES": "2", "LOGIN_ADDRESS_WINDOW": "60",
    ])
    /// Access tokens checked against their session on every use.
    private static let strict = SharedStack(["ACCESS_TOKEN_SESSION_CHECK": "true"])

    static func throttledPerUser() throws -> Stack { try userThrottled.get() }
    static func throttledPerAddress() throws -> Stack { try addressThrottled.get() }
    static func sessionCheck() throws -> Stack { try strict.get() }
}

/// What the threads of `raceAgainstSessions` saw.
struct SessionRace: Sendable {
    /// The answer to the racing account change (nil: the request itself failed).
    var action: HTTPResponse?
    /// The last refresh token each refresher held when it stopped.
    var heldRefreshTokens: [String] = []
    /// Refreshes sent after the account change had answered that still got 200.
    var lateRefreshes = 0
    /// Refreshes that got 200, over all refreshers.
    var rotations = 0
    /// Every login's answer (nil: the request itself failed).
    var logins: [HTTPResponse?] = []

    /// The token pairs of the logins that got 200.
    var grantedLogins: [TokenPair] { logins.compactMap { $0 }.filter { $0.status == 200 }.compactMap(TokenPair.parse) }
}

/// Runs `action` (an account change by the user's own session) at the same moment as:
/// one refresher per pair of `others`, each rotating its session's refresh token until
/// a refresh fails or the action has answered (then once more), and `logins` logins of
/// the user with `password`, each after a random delay of up to 3 ms. All threads start
/// together.
func raceAgainstSessions(
    _ stack: Stack, user: User, others: [TokenPair], logins: Int, password: String,
    action: @escaping @Sendable () -> HTTPResponse?
) -> SessionRace {
    enum Outcome: Sendable {
        case action(HTTPResponse?)
        case refresher(held: String, rotations: Int, late: Int)
        case login(HTTPResponse?)
    }
    let done = Flag()
    let outcomes = concurrently(1 + others.count + logins) { index -> Outcome in
        if index == 0 {
            let response = action()
            done.set()
            return .action(response)
        }
        if index <= others.count {
            var token = others[index - 1].refresh
            var rotations = 0, late = 0
            for _ in 0..<5000 {
                let afterAction = done.isSet
                guard let response = try? stack.refresh(token) else { break }
                guard response.status == 200, let pair = TokenPair.parse(response) else { break }
                token = pair.refresh
                rotations += 1
                if afterAction {
                    late += 1
                    break
                }
            }
            return .refresher(held: token, rotations: rotations, late: late)
        }
        usleep(UInt32.random(in: 0...3000))
        return .login(try? stack.login(user.username, password))
    }
    var race = SessionRace()
    for outcome in outcomes {
        switch outcome {
        case .action(let response): race.action = response
        case .refresher(let held, let rotations, let late):
            race.heldRefreshTokens.append(held)
            race.rotations += rotations
            race.lateRefreshes += late
        case .login(let response): race.logins.append(response)
        }
    }
    return race
}
