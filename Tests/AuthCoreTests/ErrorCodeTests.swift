@testable import AuthCore
import Foundation
import Testing

/// `ErrorCode` is the one table of error cases: every answer renders its code with its
/// status, and nginx's error pages and docs/errors.md use the same names.
@Suite struct ErrorCodeTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(arguments: ErrorCode.allCases)
    func everyCodeRendersWithItsStatus(_ code: ErrorCode) throws {
        let response = APIError(code, "a message").response
        #expect(response.status == code.status)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        let error = try #require(object["error"] as? [String: Any])
        #expect(error["status"] as? Int == code.status)
        #expect(error["code"] as? String == code.rawValue)
        #expect(error["message"] as? String == "a message")
        #expect(Set(error.keys) == ["status", "code", "message"])
    }

    @Test func codesAreSnakeCaseAndUnique() {
        let names = ErrorCode.allCases.map(\.rawValue)
        #expect(Set(names).count == names.count)
        for name in names { #expect(name.allSatisfy { $0.isLowercase || $0 == "_" }, "\(name)") }
        for code in ErrorCode.allCases { #expect((400..<600).contains(code.status), "\(code)") }
    }

    @Test func nginxErrorPagesUseTheTable() throws {
        let conf = try String(contentsOf: Self.repo.appendingPathComponent("deploy/nginx.conf"), encoding: .utf8)
        let pages = conf.split(separator: "\n").filter { $0.contains(#"'{"error":"#) }
        #expect(pages.count >= 15, "error pages found: \(pages.count)")
        for page in pages {
            // `return NNN '{...}'`, or a map's default body (`"" '{...}'`): the status
            // the object states, and the one returned where the line returns it.
            let stated = page.firstRange(of: #""status":"#).flatMap { Int(page[$0.upperBound...].prefix { $0.isNumber }) }
            let returned = page.split(separator: " ").dropFirst().first { Int($0) != nil }.flatMap { Int($0) }
            let code = page.firstRange(of: #""code":""#).map { page[$0.upperBound...].prefix { $0 != "\"" } }
            let known = code.flatMap { ErrorCode(rawValue: String($0)) }
            #expect(known != nil, "no code of the table: \(page)")
            #expect(known?.status == stated, "code and status disagree: \(page)")
            if page.contains("return ") { #expect(known?.status == returned, "code and returned status disagree: \(page)") }
        }
    }

    @Test func theDocsListEveryCode() throws {
        let doc = try String(contentsOf: Self.repo.appendingPathComponent("docs/errors.md"), encoding: .utf8)
        for code in ErrorCode.allCases {
            #expect(doc.contains("| `\(code.rawValue)` | \(code.status) |"), "docs/errors.md misses \(code.rawValue)")
        }
    }
}
