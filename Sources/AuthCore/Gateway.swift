// GET /auth/verify: authd as nginx's `auth_request` gateway (docs/gateway.md). nginx asks
// it, in a subrequest, whether the main request's bearer token may pass; authd answers
// 204 with the identity headers that nginx hands to the protected application, or 401/403.

/// What nginx's configuration asks of the token for one protected location: FastCGI
/// params that only nginx sets. A client cannot send them: its header `Authd-Require-Role`
/// reaches authd as `HTTP_AUTHD_REQUIRE_ROLE`, a different name. Raw values; `verify` reads them.
public struct GatewayParams: Sendable, Equatable {
    /// `AUTHD_REQUIRE_ROLE`: a comma-separated list; the token must carry one of its roles.
    public var requireRole: String?
    /// `AUTHD_REQUIRE_SESSION_CHECK`: `on` makes verify check that the session still exists.
    public var requireSessionCheck: String?

    public init(requireRole: String? = nil, requireSessionCheck: String? = nil) {
        self.requireRole = requireRole
        self.requireSessionCheck = requireSessionCheck
    }
}

extension AuthService {
    /// GET /auth/verify (any method: nginx's subrequest carries the main request's). The
    /// access token is checked as on every protected route, ended sessions included
    /// (`revocations`); with ACCESS_TOKEN_SESSION_CHECK, or `AUTHD_REQUIRE_SESSION_CHECK on`
    /// from nginx, the store is asked too. Without them no store is read. 204 with `X-Auth-*`; a refusal also carries its error object
    /// in `X-Auth-Error`, since nginx drops a subrequest's body (deploy/nginx.conf rebuilds
    /// the client's answer from it).
    func verify(_ request: Request, _ worker: Worker) throws -> Response {
        do {
            let sessionCheck = try Self.onOff(request.gateway.requireSessionCheck, "AUTHD_REQUIRE_SESSION_CHECK")
            let required = Self.roles(request.gateway.requireRole)
            let claims = try verifiedAccessToken(request)
            try checkSession(claims, worker, askStore: config.accessTokenSessionCheck || sessionCheck)
            // Tokens carry no roles yet: a location that requires any is closed to all.
            let roles: [String] = []
            if !required.isEmpty, !required.contains(where: roles.contains) {
                throw APIError(.roleRequired, "Forbidden: requires the role \(required.joined(separator: " or "))")
            }
            return Response(status: 204, headers: [
                ("X-Auth-User", claims.subject.rawValue),
                ("X-Auth-Session", claims.session.rawValue),
                ("X-Auth-Username", claims.username ?? ""),
                ("X-Auth-Roles", roles.joined(separator: ",")),
                ("X-Auth-Expires", String(claims.expiresAt)),
                ("Cache-Control", "no-store"),
            ])
        } catch var error as APIError {
            error.headers.append(("X-Auth-Error", String(decoding: error.response.body, as: UTF8.self)))
            throw error
        }
    }

    /// A role list as nginx's configuration writes it: comma-separated, blanks ignored.
    static func roles(_ list: String?) -> [String] {
        (list ?? "").split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }

    /// `on`/`off` (also `true`/`false`, `1`/`0`; absent or empty is off). Anything else is
    /// a mistake in nginx's configuration: 500, logged, never a pass.
    static func onOff(_ value: String?, _ name: String) throws(APIError) -> Bool {
        switch value?.lowercased() ?? "" {
        case "", "off", "false", "0": false
        case "on", "true", "1": true
        default: throw APIError(.gatewayMisconfigured, "Gateway misconfigured: \(name) must be on or off")
        }
    }
}
