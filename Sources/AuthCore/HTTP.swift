/// A request as the FastCGI edge hands it to the handlers: only what they read.
public struct Request: Sendable {
    public var method: String
    /// The decoded path, without the query string.
    public var path: String
    /// The query string as sent (after `?`, still percent-encoded; empty when none).
    public var query: String
    public var contentType: String?
    public var authorization: String?
    public var userAgent: String
    /// Client address as nginx passes it (`REMOTE_ADDR`).
    public var remoteAddress: String
    /// nginx's `$request_id`, for log correlation.
    public var requestID: String
    public var body: [UInt8]

    public init(method: String, path: String, query: String = "", contentType: String? = nil, authorization: String? = nil,
                userAgent: String = "", remoteAddress: String = "", requestID: String = "", body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.contentType = contentType
        self.authorization = authorization
        self.userAgent = userAgent
        self.remoteAddress = remoteAddress
        self.requestID = requestID
        self.body = body
    }
}

/// A response: status, extra headers, body. `Content-Type` (`application/json` unless
/// said otherwise) is sent whenever the body is not empty.
public struct Response: Sendable, Equatable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Sent with a non-empty body.
    public var contentType: StaticString

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], contentType: StaticString = "application/json") {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }

    public static func == (a: Response, b: Response) -> Bool {
        a.status == b.status && a.body == b.body && a.headers.elementsEqual(b.headers, by: { $0 == $1 })
            && a.contentType.description == b.contentType.description
    }

    /// The value of the first header with this name (case-insensitive).
    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0.lowercased() == n }?.1
    }

    /// A JSON body built by `build`.
    public static func json(_ status: Int, headers: [(String, String)] = [], _ build: (inout JSONWriter) -> Void) -> Response {
        var w = JSONWriter()
        w.beginObject()
        build(&w)
        w.endObject()
        return Response(status: status, headers: headers, body: w.bytes)
    }

    public static let noContent = Response(status: 204)

    /// Reason phrases for the statuses this service sends.
    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status \(status)"
        }
    }
}

/// An error with an HTTP status and a message that is safe to show to the client.
/// Internal causes are logged, never sent.
public struct APIError: Error, Equatable, Sendable {
    public var status: Int
    public var message: String
    public var headers: [(String, String)]

    public init(_ status: Int, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public static func == (a: APIError, b: APIError) -> Bool {
        a.status == b.status && a.message == b.message && a.headers.elementsEqual(b.headers, by: { $0 == $1 })
    }

    /// `{"error": {"status": N, "message": "..."}}`, the one error shape of the API.
    public var response: Response {
        .json(status, headers: headers) { w in
            w.beginObject("error")
            w.field("status", status)
            w.field("message", message)
            w.endObject()
        }
    }

    public static let notFound = APIError(404, "Not Found")
    public static let unavailable = APIError(503, "Service temporarily unavailable")
    public static let internalError = APIError(500, "Internal Server Error")
    public static let bodyTooLarge = APIError(413, "Request body too large (limit 16 KiB)")
}
