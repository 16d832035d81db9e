/// The FastCGI record framing of one request, checked on the bytes a connection has
/// queued (peeked, not consumed) before libfcgi reads any of them. libfcgi is lenient
/// where authd must not be: it serves the AUTHORIZER and FILTER roles as if they were
/// RESPONDER, skips records of another request id, and blocks in `read` for as long as
/// the peer takes. With the whole request known to be queued and well formed, libfcgi's
/// reads never wait, so the time a request may take is bounded by the peek loop alone.
///
/// What is accepted, in order: `FCGI_BEGIN_REQUEST` (request id ≠ 0), `FCGI_PARAMS`
/// records of that id up to the empty one, `FCGI_STDIN` records of that id up to the
/// empty one. Anything else (management records, `FCGI_ABORT_REQUEST`, `FCGI_DATA`,
/// another request id, another version) refuses the connection. nginx sends exactly this.
public enum FastCGIFraming {
    public static let beginRequest: UInt8 = 1, endRequest: UInt8 = 3, params: UInt8 = 4, stdin: UInt8 = 5
    public static let responder = 1
    /// `FCGI_END_REQUEST` protocol statuses.
    public static let cantMultiplex: UInt8 = 1, unknownRole: UInt8 = 3
    /// The params authd accepts in all (nginx sends 1–2 KiB; large cookies fit).
    public static let maxParamsBytes = 64 * 1024

    public enum Scan: Equatable {
        /// More bytes are needed to tell.
        case incomplete
        /// The request ends at byte `end`. `next`: the id of a request that follows it
        /// before its answer (pipelined), or 0 when other bytes follow.
        case complete(end: Int, next: UInt16?)
        /// The params are complete and the body declared so far is over `maxBody`.
        case bodyTooLarge
        /// A role other than RESPONDER: answered `FCGI_UNKNOWN_ROLE`.
        case unknownRole(requestID: UInt16)
        case invalid(String)
    }

    /// Scans the queued bytes of a connection from the start of a request.
    public static func scan(_ bytes: UnsafeRawBufferPointer, maxBody: Int) -> Scan {
        enum Phase { case begin, params, stdin }
        var phase = Phase.begin, offset = 0, id: UInt16 = 0, paramsBytes = 0, bodyBytes = 0
        while true {
            guard bytes.count - offset >= 8 else { return .incomplete }
            let version = bytes[offset], type = bytes[offset + 1]
            let requestID = UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3])
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let end = offset + 8 + length + Int(bytes[offset + 6])
            guard version == 1 else { return .invalid("FastCGI version \(version)") }
            switch phase {
            case .begin:
                guard type == beginRequest, requestID != 0, length == 8 else {
                    return .invalid("expected FCGI_BEGIN_REQUEST, got record type \(type) for request \(requestID)")
                }
                guard bytes.count >= offset + 10 else { return .incomplete }
                let role = Int(bytes[offset + 8]) << 8 | Int(bytes[offset + 9])
                if role != responder { return .unknownRole(requestID: requestID) }
                id = requestID
                phase = .params
            case .params, .stdin:
                guard requestID == id else { return .invalid("record for request \(requestID) inside request \(id)") }
                let expected = phase == .params ? params : stdin
                guard type == expected else { return .invalid("record type \(type) where \(expected) was due") }
                if phase == .params {
                    paramsBytes += length
                    guard paramsBytes <= maxParamsBytes else { return .invalid("params over \(maxParamsBytes) bytes") }
                    if length == 0 { phase = .stdin }
                } else {
                    bodyBytes += length
                    if bodyBytes > maxBody { return .bodyTooLarge }
                    if length == 0 {
                        guard bytes.count >= end else { return .incomplete }
                        return .complete(end: end, next: pipelined(bytes, at: end))
                    }
                }
            }
            guard bytes.count >= end else { return .incomplete }
            offset = end
        }
    }

    /// What follows a complete request: nil when nothing, else the id of the BEGIN_REQUEST
    /// that starts there (0 when it is not one, or not whole yet).
    private static func pipelined(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt16? {
        guard bytes.count > offset else { return nil }
        guard bytes.count - offset >= 8, bytes[offset + 1] == beginRequest else { return 0 }
        return UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3])
    }

    /// An `FCGI_END_REQUEST` record.
    public static func endRequestRecord(requestID: UInt16, protocolStatus: UInt8) -> [UInt8] {
        [1, endRequest, UInt8(requestID >> 8), UInt8(requestID & 0xFF), 0, 8, 0, 0,
         0, 0, 0, 0, protocolStatus, 0, 0, 0]
    }
}
