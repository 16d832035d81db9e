import AuthCore
import AuthFastCGI
import FuzzSupport

@_cdecl("FuzzParams_main")  // see runLibFuzzer
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzParams)
}

/// The input as a FastCGI request: NUL-separated `NAME=value` strings form `envp`; after
/// the first empty string (two NULs in a row) comes the body. Converted as the server does
/// and answered by AuthService with Redis down.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParams(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    var split = size
    for i in 0..<max(0, size - 1) where input[i] == 0 && input[i + 1] == 0 {
        split = i
        break
    }
    // The strings, NUL-terminated, in one buffer; envp points into it.
    var strings = input[..<split].map { CChar(bitPattern: $0) }
    strings.append(0)
    let body = split < size ? Array(input[(split + 2)...]) : []

    let (response, gateway) = strings.withUnsafeMutableBufferPointer { buf -> (Response, Bool) in
        var envp: [UnsafeMutablePointer<CChar>?] = []
        var start = 0
        for (i, c) in buf.enumerated() where c == 0 {
            envp.append(buf.baseAddress! + start)
            start = i + 1
        }
        envp.append(nil)
        return envp.withUnsafeMutableBufferPointer { envp in
            let params = FastCGIParams(envp: envp.baseAddress)
            // As FastCGIServer.respond: a declared or actual body over the limit is 413.
            guard params.declaredContentLength <= FastCGIServer.maxBody, body.count <= FastCGIServer.maxBody else {
                return (APIError.bodyTooLarge.response, false)
            }
            let request = params.request(body: body)
            return (Harness.service.handle(request, worker: Worker(store: DownStore())), request.gateway != GatewayParams())
        }
    }
    checkResponse(response, gatewayParams: gateway)
    return 0
}

/// Never 500, never a success that needs Redis, and every error in docs/API.md's shape, its code one of the table's with that status.
/// The one 500 allowed is `gateway_misconfigured` when the input set an AUTHD_REQUIRE_* param:
/// those are nginx's configuration, never a client's (a client's headers arrive as HTTP_*).
func checkResponse(_ r: Response, gatewayParams: Bool = false) {
    let misconfigured = String(decoding: r.body, as: UTF8.self).contains(#""code":"gateway_misconfigured""#)
    check(r.status != 500 || (gatewayParams && misconfigured), "500: \(String(decoding: r.body, as: UTF8.self))")
    check(!misconfigured || gatewayParams, "gateway_misconfigured without an AUTHD_REQUIRE_* param")
    check(Response.reason(r.status) != "Status \(r.status)", "status \(r.status) without a reason phrase")
    if r.status == 204 {
        // GET /auth/verify with a token good by signature alone: no body, no tokens.
        check(r.body.isEmpty && r.header("X-Auth-User") != nil, "204 with a body, or not verify's")
        return
    }
    if (200..<300).contains(r.status) {
        // Only /healthz, the JWKS and GET / need no Redis: no tokens are issued with it down.
        check(r.status == 200, "success \(r.status) with Redis down")
        guard case .object(let o)? = try? JSONParser.parse(r.body) else {
            check(false, "200 body is not a JSON object")
            return
        }
        check(o["accessToken"] == nil && o["refreshToken"] == nil, "tokens issued with Redis down")
        return
    }
    guard case .object(let top)? = try? JSONParser.parse(r.body), top.count == 1,
          case .object(let error)? = top["error"], error.count == 3,
          case .number(let status)? = error["status"], status == Double(r.status),
          case .string(let code)? = error["code"], ErrorCode(rawValue: code)?.status == r.status,
          case .string(let message)? = error["message"], !message.isEmpty
    else {
        check(false, "\(r.status) body not in the error shape: \(String(decoding: r.body, as: UTF8.self))")
        return
    }
    if r.status == 405 { check(r.header("Allow") != nil, "405 without Allow") }
    if r.status == 401 { check(r.header("WWW-Authenticate")?.hasPrefix("Bearer") == true, "401 without WWW-Authenticate") }
}
