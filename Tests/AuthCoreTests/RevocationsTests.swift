import Testing
@testable import AuthCore

/// The in-memory set of ended sessions and a worker's view of it.
@Suite struct RevocationsTests {
    @Test func aViewSeesEveryChangeAndOnlyLiveEntries() {
        let shared = Revocations()
        let view = RevocationView()
        let a = SessionID("a"), b = SessionID("b")
        #expect(!view.isRevoked(a, now: 100, in: shared))
        shared.revoke(a, until: 200)
        #expect(view.isRevoked(a, now: 100, in: shared))
        #expect(!view.isRevoked(b, now: 100, in: shared))
        // Past its `until` an entry no longer refuses, pruned or not.
        #expect(!view.isRevoked(a, now: 200, in: shared))
        shared.revoke([(session: "b", until: 300), (session: "a", until: 150)])
        #expect(view.isRevoked(b, now: 250, in: shared))
        // A shorter `until` never cuts an entry short (a late or repeated message).
        #expect(view.isRevoked(a, now: 190, in: shared))
        shared.prune(now: 250)
        #expect(shared.count == 1)
        #expect(view.isRevoked(b, now: 250, in: shared))
        #expect(!view.isRevoked(a, now: 100, in: shared))
    }

    /// Views on several threads while entries keep coming: each sees all that came before
    /// its check (run under `make tsan` too).
    @Test func viewsOnManyThreadsSeeWhatCameBefore() async {
        let shared = Revocations()
        await withTaskGroup(of: Bool.self) { group in
            for t in 0..<4 {
                group.addTask {
                    let view = RevocationView()
                    for i in 0..<500 {
                        let sid = SessionID("t\(t)-\(i)")
                        shared.revoke(sid, until: 10)
                        if !view.isRevoked(sid, now: 1, in: shared) { return false }
                    }
                    return true
                }
            }
            for await ok in group { #expect(ok) }
        }
        #expect(shared.count == 2000)
    }
}
