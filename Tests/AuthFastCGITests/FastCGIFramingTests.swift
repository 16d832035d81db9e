import AuthFastCGI
import Testing

/// The framing check that runs on a connection's queued bytes before libfcgi reads them.
@Suite struct FastCGIFramingTests {
    static func record(_ type: UInt8, id: UInt16 = 1, _ content: [UInt8] = [], padding: UInt8 = 0) -> [UInt8] {
        [1, type, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(content.count >> 8), UInt8(content.count & 0xFF), padding, 0]
            + content + [UInt8](repeating: 0, count: Int(padding))
    }
    static func begin(id: UInt16 = 1, role: UInt16 = 1, keep: Bool = true) -> [UInt8] {
        record(FastCGIFraming.beginRequest, id: id, [UInt8(role >> 8), UInt8(role & 0xFF), keep ? 1 : 0, 0, 0, 0, 0, 0])
    }
    static let params = record(FastCGIFraming.params, [14, 3] + Array("REQUEST_METHODGET".utf8)) + record(FastCGIFraming.params)
    static func request(id: UInt16 = 1, body: [UInt8] = []) -> [UInt8] {
        begin(id: id) + params + (body.isEmpty ? [] : record(FastCGIFraming.stdin, id: id, body)) + record(FastCGIFraming.stdin, id: id)
    }

    func scan(_ bytes: [UInt8], maxBody: Int = 16384) -> FastCGIFraming.Scan {
        bytes.withUnsafeBytes { FastCGIFraming.scan($0, maxBody: maxBody) }
    }

    @Test func aWholeRequestIsCompleteAtItsLastByte() {
        let bytes = Self.request(body: Array("{}".utf8))
        #expect(scan(bytes) == .complete(end: bytes.count, next: nil))
        // Every strict prefix is still arriving.
        for cut in 0..<bytes.count { #expect(scan(Array(bytes[..<cut])) == .incomplete, "prefix of \(cut) bytes") }
    }

    @Test func paddingIsPartOfTheRecord() {
        let bytes = Self.begin() + Self.params + Self.record(FastCGIFraming.stdin, Array("{}".utf8), padding: 6)
            + Self.record(FastCGIFraming.stdin)
        #expect(scan(bytes) == .complete(end: bytes.count, next: nil))
    }

    @Test func aRequestSentAheadIsNamed() {
        let first = Self.request(id: 1)
        #expect(scan(first + Self.request(id: 7)) == .complete(end: first.count, next: 7))
        #expect(scan(first + [1, 4]) == .complete(end: first.count, next: 0))
    }

    @Test func otherRolesAreUnknown() {
        for role: UInt16 in [2, 3, 9] {
            #expect(scan(Self.begin(id: 4, role: role)) == .unknownRole(requestID: 4))
        }
    }

    @Test func aRecordOfAnotherRequestIsRefused() {
        let foreign = Self.record(FastCGIFraming.params, id: 2, [4, 6] + Array("HTTP_DELETE".utf8))
        guard case .invalid = scan(Self.begin(id: 1) + foreign + Self.params) else { Issue.record("accepted"); return }
        guard case .invalid = scan(Self.begin(id: 1) + Self.params + Self.record(FastCGIFraming.stdin, id: 3)) else {
            Issue.record("accepted stdin of another request"); return
        }
    }

    @Test func anythingButBeginFirstIsRefused() {
        for bytes in [Self.params, Self.record(9, id: 0), Self.record(FastCGIFraming.beginRequest, id: 0, [0, 1, 0, 0, 0, 0, 0, 0]),
                      [2] + Self.begin().dropFirst(), Self.begin() + Self.record(2)] {
            guard case .invalid = scan(bytes) else { Issue.record("accepted \(bytes.prefix(16))"); continue }
        }
    }

    @Test func aBodyOverTheLimitIsToldFromItsHeaders() {
        // Declared by the record headers: known before the bytes arrive.
        let header = Self.begin() + Self.params + Self.record(FastCGIFraming.stdin, [UInt8](repeating: 0x20, count: 101)).prefix(8)
        #expect(scan(Array(header), maxBody: 100) == .bodyTooLarge)
        #expect(scan(Self.request(body: [UInt8](repeating: 0x20, count: 100)), maxBody: 100) != .bodyTooLarge)
    }

    @Test func paramsOverTheirLimitAreRefused() {
        let chunk = Self.record(FastCGIFraming.params, [UInt8](repeating: 0x41, count: 60_000))
        guard case .invalid = scan(Self.begin() + chunk + chunk) else { Issue.record("accepted 120 kB of params"); return }
    }

    @Test func theEndRequestRecordIsWellFormed() {
        #expect(FastCGIFraming.endRequestRecord(requestID: 0x0102, protocolStatus: 3) == [1, 3, 1, 2, 0, 8, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0])
    }
}
