import Testing
@testable import AuthCore

/// `?limit=&cursor=` of GET /auth/sessions: the query parser, the cursor, and paging
/// through `AuthService.handle` on the in-memory store.
extension HandlerTests {
    func page(_ access: String, _ query: String, on service: AuthService? = nil) -> Response {
        (service ?? self.service).handle(Request(method: "GET", path: "/auth/sessions", query: query,
                                                 authorization: "Bearer " + access), worker: worker)
    }
    func nextCursor(_ r: Response) -> String?? {
        switch body(r)["nextCursor"] {
        case .string(let s)?: .some(s)
        case .null?: .some(nil)
        default: nil  // absent or another type
        }
    }

    @Test func queryDefaultsAndLimits() throws {
        #expect(try SessionListQuery("") == SessionListQuery(""))
        #expect(try SessionListQuery("").limit == 50 && SessionListQuery("").after == nil)
        #expect(try SessionListQuery("limit=1").limit == 1)
        #expect(try SessionListQuery("limit=100").limit == 100)
        #expect(try SessionListQuery("limit=007").limit == 7)
        #expect(try SessionListQuery("limit=%31%32").limit == 12)
        #expect(try SessionListQuery("&&x=%zz&limit=3&other=1&").limit == 3)
        for bad in ["limit=0", "limit=101", "limit=-1", "limit=+5", "limit=%2B5", "limit=1.5", "limit=1e2", "limit=", "limit",
                    "limit=abc", "limit=99999999999999999999", "limit=%", "limit=%G1", "limit=%3", "limit=5%00", "limit= 5"] {
            #expect(throws: SessionListQuery.badLimit, "\(bad)") { try SessionListQuery(bad) }
        }
        #expect(throws: APIError(.invalidQuery, "\"limit\" may be given only once")) { try SessionListQuery("limit=1&limit=1") }
        #expect(throws: APIError(.invalidQuery, "\"cursor\" may be given only once")) {
            try SessionListQuery("cursor=\(String(repeating: "A", count: 34))&cursor=\(String(repeating: "A", count: 34))")
        }
        for bad in ["cursor=", "cursor", "cursor=abc", "cursor=" + String(repeating: "A", count: 33), "cursor=" + String(repeating: "A", count: 35),
                    "cursor=" + String(repeating: "A", count: 33) + "=", "cursor=" + String(repeating: "A", count: 33) + "+",
                    "cursor=" + String(repeating: "A", count: 33) + "%C3%A9", "cursor=%FF"] {
            #expect(throws: SessionListQuery.badCursor, "\(bad)") { try SessionListQuery(bad) }
        }
    }

    @Test func cursorsRoundTripAndEveryWellFormedOneIsAPosition() throws {
        let id = SessionID(randomID())
        for position in [SessionPosition(lastUsedAt: 1_800_000_123, createdAt: 1_799_999_000, id: id),
                         SessionPosition(lastUsedAt: 0, createdAt: 0, id: id),
                         SessionPosition(lastUsedAt: 9_999_999_999, createdAt: 9_999_999_999, id: id)] {
            let text = try #require(SessionCursor.encode(position))
            #expect(text.utf8.count == 34 && text.utf8.allSatisfy { Base64URL.value($0) != 0xFF }, "\(text)")
            #expect(SessionCursor.decode(text) == position)
            #expect(try SessionListQuery("cursor=" + text).after == position)
        }
        // Times beyond the index's range are taken as its largest.
        #expect(SessionCursor.decode(String(repeating: "_", count: 34))?.lastUsedAt == 9_999_999_999)
        #expect(SessionCursor.decode(String(repeating: "A", count: 34)) ==
                SessionPosition(lastUsedAt: 0, createdAt: 0, id: SessionID(String(repeating: "A", count: 22))))
        #expect(SessionCursor.encode(SessionPosition(lastUsedAt: 1, createdAt: 1, id: SessionID("short"))) == nil)
        // The example of docs/openapi.yaml.
        #expect(SessionCursor.decode("BrSdRYBrSdIAZm9vYmFyYmF6cXV4cXV1eA") ==
                SessionPosition(lastUsedAt: 1_800_000_600, createdAt: 1_800_000_000, id: SessionID("Zm9vYmFyYmF6cXV4cXV1eA")))
    }

    @Test func positionsOrderAsTheListDoes() {
        let a = SessionID("A"), b = SessionID("B")
        #expect(SessionPosition(lastUsedAt: 2, createdAt: 1, id: b) < SessionPosition(lastUsedAt: 1, createdAt: 1, id: a))
        #expect(SessionPosition(lastUsedAt: 2, createdAt: 2, id: b) < SessionPosition(lastUsedAt: 2, createdAt: 1, id: a))
        #expect(SessionPosition(lastUsedAt: 2, createdAt: 2, id: a) < SessionPosition(lastUsedAt: 2, createdAt: 2, id: b))
        // By bytes: '-' (0x2D) < '0' < 'A' < '_' (0x5F) < 'a'.
        let ids = ["a", "_", "A", "0", "-"].map { SessionPosition(lastUsedAt: 1, createdAt: 1, id: SessionID($0)) }
        #expect(ids.sorted().map(\.id.rawValue) == ["-", "0", "A", "_", "a"])
    }

    @Test func pagesWalkEverySessionOnceInOrder() throws {
        let alice = register("alice", "password1")
        for i in 0..<6 {
            clock.advance(i % 2 == 0 ? 1 : 0)  // some share a second: those go by id
            _ = login("alice", "password1", userAgent: "device/\(i)")
        }
        let whole = page(alice.access, "limit=100")
        #expect(whole.status == 200 && nextCursor(whole) == .some(nil))
        let all = ids(sessionList(alice.access))
        #expect(all.count == 7)
        var seen: [String] = [], cursor: String?, pages = 0
        repeat {
            let r = page(alice.access, "limit=2" + (cursor.map { "&cursor=" + $0 } ?? ""))
            #expect(r.status == 200 && r.header("Cache-Control") == "no-store")
            guard case .array(let items)? = body(r)["sessions"], case .some(let next) = nextCursor(r) else {
                Issue.record("not a page: \(String(decoding: r.body, as: UTF8.self))")
                return
            }
            #expect(items.count == (next == nil ? 1 : 2))
            seen += items.compactMap { if case .object(let o) = $0, case .string(let id)? = o["id"] { id } else { nil } }
            cursor = next
            pages += 1
        } while cursor != nil && pages < 10
        #expect(seen == all && pages == 4)
    }

    @Test func theDefaultPageIs50AndTheMaximum100() throws {
        let roomy = try Self.makeService(clock: clock, ["MAX_SESSIONS_PER_USER": "200"])
        let alice = register("alice", "password1", on: roomy)
        for _ in 0..<120 { _ = login("alice", "password1", userAgent: "", on: roomy) }
        func count(_ r: Response) -> Int? { if case .array(let a)? = body(r)["sessions"] { a.count } else { nil } }
        let first = page(alice.access, "", on: roomy)
        #expect(count(first) == 50)
        guard case .some(.some(let cursor)) = nextCursor(first) else { Issue.record("no nextCursor"); return }
        #expect(count(page(alice.access, "limit=100&cursor=" + cursor, on: roomy)) == 71)
        #expect(count(page(alice.access, "limit=100", on: roomy)) == 100)
        #expect(page(alice.access, "limit=101", on: roomy).status == 400)
    }

    @Test func badParametersAre400InTheErrorShapeAfterTheToken() {
        let alice = register("alice", "password1")
        let badLimit = page(alice.access, "limit=0")
        #expect(badLimit.status == 400 && errorMessage(badLimit) == "\"limit\" must be a whole number from 1 to 100")
        let badCursor = page(alice.access, "cursor=nope")
        #expect(badCursor.status == 400 && errorMessage(badCursor) == "\"cursor\" must be the nextCursor of an earlier page")
        // No token: 401 first, whatever the query.
        let anonymous = service.handle(Request(method: "GET", path: "/auth/sessions", query: "limit=0"), worker: worker)
        #expect(anonymous.status == 401)
        store.down = true
        #expect(page(alice.access, "limit=0").status == 400)
        #expect(page(alice.access, "limit=1").status == 503)
    }
}
