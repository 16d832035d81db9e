/// The failed-login limits of one login: per username and per client address, each a
/// counter in the store with a fixed window opened by the first failure.
///
/// An attempt is counted before bcrypt runs, so that N concurrent guesses cannot all slip
/// under the limit; it is uncounted again when it turns out not to be a failure (success,
/// 503). A refused attempt costs no bcrypt and is not counted itself, so the window is not
/// extended by hammering. A successful login clears its username's count, never the
/// address's (one account's owner must not reset an attacker's address).
///
/// A registration takes the address limit only (`registration`): its failure is a 409,
/// which tells that the name exists, as a failed login would tell a password was wrong.
struct LoginThrottle {
    private let store: any AuthStore
    private let limits: [(ThrottleKey, Int, Int64)]
    private var taken: [ThrottleKey] = []

    /// Counts the login attempt, or throws 429 with `Retry-After` when a limit is reached.
    init(_ config: Config, username: String, address: String, store: any AuthStore) throws {
        try self.init(config, username: Optional(username), address: address, store: store, refusal: "Too many failed logins")
    }

    /// Counts a registration attempt against the client address (the budget failed logins
    /// use too), or throws the same 429 as a login does once the address is over its limit.
    static func registration(_ config: Config, address: String, store: any AuthStore) throws -> LoginThrottle {
        try LoginThrottle(config, username: nil, address: address, store: store, refusal: "Too many failed attempts from this address")
    }

    private init(_ config: Config, username: String?, address: String, store: any AuthStore, refusal: String) throws {
        self.store = store
        var limits: [(ThrottleKey, Int, Int64)] = []
        if config.loginAddressMaxFailures > 0, let network = Self.network(of: address) {
            limits.append((.address(network), config.loginAddressMaxFailures, config.loginAddressWindow))
        }
        if config.loginUserMaxFailures > 0, let username {
            limits.append((.username(username), config.loginUserMaxFailures, config.loginUserWindow))
        }
        self.limits = limits
        for (key, limit, window) in limits {
            if let wait = try store.takeAttempt(key, limit: limit, window: window) {
                withdraw()
                throw APIError(.tooManyAttempts, "\(refusal); try again in \(wait) s", headers: [("Retry-After", String(wait))])
            }
            taken.append(key)
        }
    }

    /// The password was right (or the name was free): the username starts afresh, the
    /// address gets its attempt back.
    func succeeded() {
        for key in taken {
            if case .username = key { try? store.clearAttempts(key) } else { try? store.returnAttempt(key) }
        }
    }

    /// The attempt never reached a verdict (store or lane trouble): uncount it everywhere.
    func withdraw() {
        for key in taken { try? store.returnAttempt(key) }
    }

    /// Runs the attempt: `failure` leaves it counted, success is `succeeded()`, any other
    /// error (store, lane) withdraws it.
    func judge<T>(failure: APIError, _ attempt: () throws -> T) throws -> T {
        do {
            let result = try attempt()
            succeeded()
            return result
        } catch let error as APIError where error == failure {
            throw error
        } catch {
            withdraw()
            throw error
        }
    }

    /// The unit an address is counted as: an IPv4 address itself; an IPv6 address its /64,
    /// since one client typically holds a whole /64 (IPv4-mapped IPv6 is IPv4). Anything
    /// else nginx might pass is counted as it is. Nil when there is no address at all.
    static func network(of address: String) -> String? {
        guard !address.isEmpty else { return nil }
        guard address.contains(":") else { return address }
        let lower = address.lowercased()
        if lower.hasPrefix("::ffff:"), lower.dropFirst(7).contains(".") { return String(lower.dropFirst(7)) }
        return ipv6Prefix64(lower) ?? address
    }

    /// `2001:db8:0:1::5` -> `2001:db8:0:1::/64`; nil unless eight hex groups (after `::`).
    private static func ipv6Prefix64(_ text: String) -> String? {
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        func groups(_ part: Substring) -> [Substring] {
            part.isEmpty ? [] : part.split(separator: ":", omittingEmptySubsequences: false)
        }
        let head = groups(halves[0]), tail = halves.count == 2 ? groups(halves[1]) : []
        let missing = 8 - head.count - tail.count
        guard halves.count == 2 ? missing >= 1 : missing == 0 else { return nil }
        var values: [UInt16] = []
        for group in head + Array(repeating: "0", count: max(0, missing)) + tail {
            guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
            values.append(value)
        }
        return values.prefix(4).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }
}
