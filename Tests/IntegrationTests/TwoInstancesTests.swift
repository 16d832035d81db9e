import Foundation
import Testing

/// Two authd behind one nginx upstream, sharing one Redis: either serves any client, and
/// one going away costs nothing but its own in-flight requests. (The whole integration
/// suite also runs this way: `AUTHD_INSTANCES=2 swift test`, see README "Tests".)
@Suite("Two authd instances")
struct TwoInstancesTests {
    @Test func eitherInstanceServesAndOneCanGo() throws {
        let stack = try Stack.start(["AUTHD_INSTANCES": "2"])
        defer { stack.shutdown() }
        #expect(stack.instances == 2)
        let conf = try String(contentsOfFile: stack.dir + "/nginx/nginx.conf", encoding: .utf8)
        #expect(conf.contains(stack.authdSocket(1)) && conf.contains(stack.authdSocket(2)))
        // A session rotated ten times: nginx alternates the instances, so each rotation's
        // token was issued by one and spent at the other.
        let user = try stack.newUser("twin")
        var pair = user.tokens
        for _ in 0..<10 { pair = try stack.rotate(pair.refresh) }
        #expect(try stack.home(pair.access).status == 200)
        // A replay at either instance ends the session at both (revocations).
        expectError(try stack.refresh(user.tokens.refresh), status: 403)
        try expectSessionEndedSoon { try stack.home(pair.access) }
        pair = try stack.newSession(user)
        // Both served: nginx's access log names the upstream of every request.
        let access = try String(contentsOfFile: stack.dir + "/nginx/logs/access.log", encoding: .utf8)
        for instance in 1...2 {
            let served = access.split(separator: "\n").filter { $0.contains("unix:\(stack.authdSocket(instance))\"") }.count
            #expect(served >= 4, "instance \(instance) served \(served) requests")
        }
        // The second goes away (SIGTERM): everything keeps working on the first.
        #expect(stack.stopAuthd(instance: 2) == .exited(0))
        let statuses = (0..<20).map { _ in statusOf { try stack.home(pair.access) } }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
        let again = try stack.newSession(user)
        _ = try stack.rotate(again.refresh)
    }
}
