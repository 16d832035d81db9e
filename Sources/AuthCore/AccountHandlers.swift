// Account and session management: the caller's sessions, its password, its account.
// Every route here takes an access token; the ones that change the account also ask for
// the password again, checked and throttled like a login.

extension AuthService {
    /// GET /auth/sessions?limit=&cursor=: one page of the caller's live sessions, most
    /// recently used first, and the cursor of the next page (null on the last).
    func sessions(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try authenticate(request, worker)
        let query = try SessionListQuery(request.query)
        let page = try worker.store.sessions(of: claims.subject, after: query.after, limit: query.limit)
        let next = try page.next.map { position in
            // Ids are made by randomID(); anything else in the index was not written by us.
            guard let cursor = SessionCursor.encode(position) else {
                throw StoreUnavailable("session id \(position.id) in the index is not 22 base64url characters")
            }
            return cursor
        }
        return .json(200, headers: [("Cache-Control", "no-store")]) { w in
            w.beginArray("sessions")
            for session in page.sessions {
                w.beginObject()
                w.field("id", session.id.rawValue)
                w.field("createdAt", ISO8601.format(session.createdAt))
                w.field("lastUsedAt", ISO8601.format(session.lastUsedAt))
                w.field("userAgent", session.meta.userAgent)
                w.field("address", session.meta.address)
                w.field("current", session.id == claims.session)
                w.endObject()
            }
            w.endArray()
            w.field("nextCursor", next)
        }
    }

    /// DELETE /auth/sessions/{id}: ends one of the caller's sessions. Another user's
    /// session is not found under the caller's keys, so it is 404 like an unknown one.
    func endSession(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try authenticate(request, worker)
        let id = request.path.dropFirst(Self.sessionPathPrefix.count)
        guard Self.isRandomID(id), try worker.store.endSession(SessionID(String(id)), of: claims.subject) else {
            throw APIError(.sessionNotFound, "Session not found")
        }
        revoked(SessionID(String(id)))
        return .noContent
    }

    /// POST /auth/password: replaces the password and ends every other session of the user,
    /// in one step that a racing login or refresh cannot slip through (see `RedisStore`).
    func changePassword(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try authenticate(request, worker)
        let body = try Validation.jsonObject(request)
        let current = try Validation.field(body, "currentPassword")
        let new = try Validation.checkedPassword(Validation.field(body, "newPassword"), field: "newPassword")
        // Bytes, not String ==: canonically equivalent spellings hash differently.
        guard !new.utf8.elementsEqual(current.utf8) else {
            throw APIError(.validationFailed, "\"newPassword\" must differ from \"currentPassword\"")
        }
        try reauthenticated(claims, password: current, request, worker, wrong: APIError(.invalidPassword, "Current password is not valid")) { user in
            let hash = try timed(worker) { try hasher.hash(new) }
            return try worker.store.changePassword(of: user.id, from: user.passwordHash, to: hash, keeping: claims.session)
        }
        logger.info("password changed", metadata: ["user": "\(claims.subject)", "request_id": "\(request.requestID)"])
        return .noContent
    }

    /// DELETE /auth/account: deletes the user and its sessions; the username becomes free.
    func deleteAccount(_ request: Request, _ worker: Worker) throws -> Response {
        let claims = try authenticate(request, worker)
        let body = try Validation.jsonObject(request)
        let password = try Validation.field(body, "password")
        try reauthenticated(claims, password: password, request, worker, wrong: APIError(.invalidPassword, "Password not valid")) { user in
            try worker.store.deleteUser(user)
        }
        logger.info("account deleted", metadata: ["user": "\(claims.subject)", "request_id": "\(request.requestID)"])
        return .noContent
    }

    /// Checks the caller's password as a login does (busy check, failed-login limits, one
    /// bcrypt), then runs `commit` with the user as read. `commit` answers false when the
    /// stored hash changed since: after a concurrent password change the password given is
    /// no longer the current one, so that is `wrong` too; after a concurrent deletion the
    /// user is gone, which is no failed guess. (A password change hashes the new password
    /// inside `commit`: that second bcrypt can still be refused as busy, 503, with the
    /// attempt withdrawn.)
    private func reauthenticated(_ claims: Claims, password: String, _ request: Request, _ worker: Worker,
                                 wrong: APIError, commit: (UserRecord) throws -> Bool) throws {
        try admitPasswordWork()
        guard let user = try worker.store.user(id: claims.subject) else { throw Self.userGone }
        let throttle = try LoginThrottle(config, username: user.username, address: request.remoteAddress, store: worker.store)
        try throttle.judge(failure: wrong) {
            // A string that breaks the password rules cannot be the password, and bcrypt
            // would cut one over 72 bytes: no hash is computed for it.
            let plausible = (try? Validation.checkedPassword(password)) != nil
            guard plausible, try timed(worker, { try hasher.verify(password, against: user.passwordHash) }) else { throw wrong }
            guard try commit(user) else {
                guard try worker.store.user(id: user.id) != nil else { throw Self.userGone }
                throw wrong
            }
        }
    }

    /// 22 base64url characters, the shape of `randomID()`: anything else is not looked up.
    static func isRandomID(_ text: Substring) -> Bool {
        text.utf8.count == 22 && text.utf8.allSatisfy { b in
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F
        }
    }
}
