public import AuthCore

/// `AuthStore` on Redis. One instance per worker thread; it owns one connection.
///
/// The rule for every write: a 503 means nothing was applied. Each write is a script whose
/// deadline guard (`RedisConnection.evalsha`) makes a late run, one that queued up while
/// Redis stalled and ran after we gave up, change nothing. What a request had already
/// changed before a later step failed is undone (at once, or as a `RedisDebts` entry once
/// Redis answers again).
///
/// The store's methods and the scripts they run are written together, one file a feature:
/// users and names (`RedisStore+Users.swift`), sessions (`+Sessions`), refresh-token
/// rotation (`+Refresh`), password change and deletion (`+Account`), login attempts (`+Attempts`).
public final class RedisStore: AuthStore {
    let connection: RedisConnection
    let debts: RedisDebts
    /// How long after a session ends its access tokens may still be presented: how long
    /// it stays in the revocation log (`AuthService.revocationTTL`).
    let revocationTTL: Int64
    private var settling = false

    /// `metrics` counts the connections made; `debts` is shared by the workers' stores.
    public init(endpoint: RedisEndpoint, timeoutSeconds: Double, revocationTTL: Int64, metrics: WorkerMetrics? = nil,
                debts: RedisDebts = RedisDebts()) {
        connection = RedisConnection(endpoint: endpoint, timeoutSeconds: timeoutSeconds) { metrics?.storeConnected() }
        self.debts = debts
        self.revocationTTL = revocationTTL
    }

    public func ping() throws {
        let reply = try run(["PING"])
        guard case .status("PONG") = reply else { throw unexpected("PING", reply) }
    }

    // MARK: Clean-ups

    /// Runs a clean-up now, or leaves it owed: not now when this request's previous command
    /// timed out or broke the connection, since reconnecting to a Redis that does not answer
    /// would hold the request for another REDIS_TIMEOUT.
    func cleanUp(_ debt: RedisDebts.Debt) {
        guard connection.isConnected else { return debts.add(debt) }
        do { try settle(debt) } catch { if !connection.isConnected { debts.add(debt) } }
    }

    private func settle(_ debt: RedisDebts.Debt) throws {
        switch debt {
        case .undoRegistration(let username, let id):
            try eval(Scripts.DiscardUser(user: id))
            _ = try eval(Scripts.ReleaseName(username: username, owner: id, state: .any))
        case .undoSession(let session, let user):
            try endSession(session, of: user)
        case .undoRotation(let session, let user, let next):
            _ = try eval(Scripts.UndoRotation(session: session, of: user, rotatedTo: next))
        case .returnAttempt(let key):
            try eval(Scripts.ReturnAttempt(counter: key))
        case .clearAttempts(let key):
            try eval(Scripts.ClearAttempts(counter: key))
        }
    }

    /// Settles what is owed before this store's own command. Throws (503) when Redis does
    /// not answer; a debt that Redis refuses (an error reply) is dropped.
    private func settleDebts() throws {
        guard !settling, !debts.isEmpty else { return }
        settling = true
        defer { settling = false }
        // A short quiet: enough for the requests queued behind a failed attempt to be told at
        // once, short enough not to hold back the retries once Redis answers again.
        try debts.settle(quiet: .milliseconds(100)) { debt in
            for attempt in 0..<2 {
                let started = ContinuousClock.now
                do {
                    return try settle(debt)
                } catch {
                    if connection.isConnected { return }  // refused by Redis: dropped
                    // A connection found dead at once (Redis restarted since): once more, afresh.
                    if attempt == 1 || started.duration(to: .now) >= .milliseconds(100) { throw error }
                }
            }
        }
    }

    /// A write whose answer may be lost after Redis applied it (the connection broke, or
    /// Redis froze between running the script and answering): then `undo` is owed, so that
    /// our 503 still means "not applied".
    func eval<S: RedisScript>(_ script: S, undo: RedisDebts.Debt) throws -> S.Result {
        do {
            return try eval(script)
        } catch {
            if !connection.isConnected { debts.add(undo) }
            throw error
        }
    }

    // MARK: Plumbing

    /// A read of one key (`GET`, `HMGET`, `EXISTS`). A Redis error reply is a store
    /// failure, not a client's mistake. Every write is a script, behind the deadline guard.
    func read(_ command: String, _ key: RedisKey, _ fields: String...) throws -> RedisReply {
        try run([command, key.rawValue] + fields)
    }

    private func run(_ args: [String]) throws -> RedisReply {
        try settleDebts()
        let reply = try connection.command(args)
        if case .error = reply { throw unexpected(args[0], reply) }
        return reply
    }

    /// Runs a script by its SHA, loading it when the server does not know it (first use,
    /// or after a restart): NOSCRIPT means nothing ran, so the retry cannot apply a change twice.
    @discardableResult
    func eval<S: RedisScript>(_ script: S) throws -> S.Result {
        let lua = S.lua
        var keys = script.keys.map(\.rawValue), arguments = script.arguments
        if lua.revokes {
            keys.append(RedisKey.revocations.rawValue)
            arguments.append(String(revocationTTL))
        }
        assert(keys.count == lua.keys.count && arguments.count == lua.arguments.count, "script \(lua.name): wrong arity")
        try settleDebts()
        for _ in 0..<2 {
            let reply = try connection.evalsha(lua.sha, keys: keys, args: arguments)
            if case .error(let e) = reply, e.hasPrefix("NOSCRIPT") {
                let loaded = try connection.command(["SCRIPT", "LOAD", lua.source])
                guard loaded.text == lua.sha else { throw unexpected("SCRIPT LOAD \(lua.name)", loaded) }
                continue
            }
            do {
                return try S.decode(reply)
            } catch {
                // An error reply (OOM, READONLY replica, MISCONF, LATE) lands here too.
                throw unexpected("script \(lua.name)", reply)
            }
        }
        throw StoreUnavailable("redis keeps forgetting script \(lua.name)")
    }

    func unexpected(_ what: String, _ reply: RedisReply) -> StoreUnavailable {
        // A Redis error (OOM, READONLY replica, MISCONF) means the store cannot serve: 503.
        StoreUnavailable("redis \(what): unexpected reply \(reply)")
    }
}

/// The scripts, one type each, declared by feature in the `RedisStore+*.swift` files.
enum Scripts {
    /// Every script, for the test that loads each into a real Redis (a new script goes here too).
    static let all: [LuaScript] = [
        ReserveName.lua, AddPendingUser.lua, KeepReservation.lua, ConfirmUser.lua, DiscardUser.lua,
        PermanentOwner.lua, ReleaseName.lua, CreateSession.lua, EndSession.lua, EndAllSessions.lua,
        ListSessions.lua, Rotate.lua, UndoRotation.lua, ChangePassword.lua, DeleteUser.lua,
        TakeAttempt.lua, ReturnAttempt.lua, ClearAttempts.lua,
    ]
}
