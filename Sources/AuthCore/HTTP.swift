/// A request as the FastCGI edge hands it to the handlers: only what they read.
public struct Request: Sendable {
    public var method: String
    /// The decoded path, without the query string.
    public var path: String
    /// The query string as sent (after `?`, still percent-encoded; empty when none).
    public var query: String
    public var contentType: String?
    public var authorization: String?
    /// What nginx's configuration asks of the token at GET /auth/verify.
    public var gateway: GatewayParams
    public var userAgent: String
    /// Client address as nginx passes it (`REMOTE_ADDR`).
    public var remoteAddress: String
    /// nginx's `$request_id`, for log correlation.
    public var requestID: String
    public var body: [UInt8]

    public init(method: String, path: String, query: String = "", contentType: String? = nil, authorization: String? = nil,
                gateway: GatewayParams = GatewayParams(), userAgent: String = "", remoteAddress: String = "",
                requestID: String = "", body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.contentType = contentType
        self.authorization = authorization
        self.gateway = gateway
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

/// The one table of error cases: a stable machine-readable code and the HTTP status it is
/// answered with. The message goes with each answer (some name a field or a wait); the
/// code is what a client branches on. docs/errors.md lists them; nginx's own error
/// pages (deploy/nginx.conf) use the same names.
public enum ErrorCode: String, CaseIterable, Sendable {
    case badRequest = "bad_request"
    case malformedJSON = "malformed_json"
    case invalidCredentialsFormat = "invalid_credentials_format"
    case missingField = "missing_field"
    case wrongFieldType = "wrong_field_type"
    case contentLengthMismatch = "content_length_mismatch"
    case invalidQuery = "invalid_query"
    case tokenMissing = "token_missing"
    case tokenExpired = "token_expired"
    case tokenInvalid = "token_invalid"
    case sessionEnded = "session_ended"
    case userGone = "user_gone"
    case invalidCredentials = "invalid_credentials"
    case invalidPassword = "invalid_password"
    case refreshTokenInvalid = "refresh_token_invalid"
    case refreshTokenExpired = "refresh_token_expired"
    case refreshTokenReused = "refresh_token_reused"
    case refreshTokenRevoked = "refresh_token_revoked"
    case roleRequired = "role_required"
    case notFound = "not_found"
    case sessionNotFound = "session_not_found"
    case methodNotAllowed = "method_not_allowed"
    case usernameTaken = "username_taken"
    case bodyTooLarge = "body_too_large"
    case unsupportedMediaType = "unsupported_media_type"
    case validationFailed = "validation_failed"
    case tooManyAttempts = "too_many_attempts"
    case internalError = "internal_error"
    case gatewayMisconfigured = "gateway_misconfigured"
    case storeUnavailable = "store_unavailable"
    case busy = "busy"
    // Answered by nginx itself (deploy/nginx.conf's error pages), before or instead of authd.
    case forbidden = "forbidden"
    case requestTimeout = "request_timeout"
    case lengthRequired = "length_required"
    case uriTooLong = "uri_too_long"
    case httpsRequired = "https_required"
    case rateLimited = "rate_limited"
    case headerTooLarge = "header_too_large"
    case badClientCertificate = "bad_client_certificate"
    case clientCertificateRequired = "client_certificate_required"
    case plainHTTPOnHTTPSPort = "plain_http_on_https_port"
    case notImplemented = "not_implemented"
    case upstreamUnavailable = "upstream_unavailable"
    case unavailable = "unavailable"
    case upstreamTimeout = "upstream_timeout"
    case httpVersionNotSupported = "http_version_not_supported"

    public var status: Int {
        switch self {
        case .badRequest, .malformedJSON, .invalidCredentialsFormat, .missingField, .wrongFieldType, .contentLengthMismatch,
             .invalidQuery, .headerTooLarge, .badClientCertificate, .clientCertificateRequired, .plainHTTPOnHTTPSPort: 400
        case .tokenMissing, .tokenExpired, .tokenInvalid, .sessionEnded, .userGone, .invalidCredentials, .invalidPassword: 401
        case .refreshTokenInvalid, .refreshTokenExpired, .refreshTokenReused, .refreshTokenRevoked, .roleRequired, .forbidden: 403
        case .notFound, .sessionNotFound: 404
        case .methodNotAllowed: 405
        case .requestTimeout: 408
        case .usernameTaken: 409
        case .lengthRequired: 411
        case .bodyTooLarge: 413
        case .uriTooLong: 414
        case .unsupportedMediaType: 415
        case .validationFailed: 422
        case .httpsRequired: 426
        case .tooManyAttempts, .rateLimited: 429
        case .internalError, .gatewayMisconfigured: 500
        case .notImplemented: 501
        case .upstreamUnavailable: 502
        case .storeUnavailable, .busy, .unavailable: 503
        case .upstreamTimeout: 504
        case .httpVersionNotSupported: 505
        }
    }
}

/// An error with an HTTP status and a message that is safe to show to the client.
/// Internal causes are logged, never sent.
public struct APIError: Error, Equatable, Sendable {
    public var code: ErrorCode
    public var message: String
    public var headers: [(String, String)]
    public var status: Int { code.status }

    public init(_ code: ErrorCode, _ message: String, headers: [(String, String)] = []) {
        self.code = code
        self.message = message
        self.headers = headers
    }

    public static func == (a: APIError, b: APIError) -> Bool {
        a.code == b.code && a.message == b.message && a.headers.elementsEqual(b.headers, by: { $0 == $1 })
    }

    /// `{"error": {"status": N, "code": "...", "message": "..."}}`, the one error shape of the API.
    public var response: Response {
        .json(status, headers: headers) { w in
            w.beginObject("error")
            w.field("status", status)
            w.field("code", code.rawValue)
            w.field("message", message)
            w.endObject()
        }
    }

    public static let notFound = APIError(.notFound, "Not Found")
    public static let unavailable = APIError(.storeUnavailable, "Service temporarily unavailable")
    public static let internalError = APIError(.internalError, "Internal Server Error")
    public static let bodyTooLarge = APIError(.bodyTooLarge, "Request body too large (limit 16 KiB)")
}
