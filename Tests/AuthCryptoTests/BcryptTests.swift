import AuthCrypto
import Testing

/// Published bcrypt vectors: OpenWall crypt_blowfish / OpenBSD (`$2a$05$...`) and the
/// pyca/bcrypt suite (`$2b$04$...`).
struct BcryptVector: Sendable, CustomTestStringConvertible {
    let password: String
    let hash: String
    var testDescription: String { hash }
}

let bcryptVectors: [BcryptVector] = [
    .init(password: "U*U", hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    .init(password: "U*U*", hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"),
    .init(password: "U*U*U", hash: "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"),
    .init(password: "", hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"),
    // Exactly 72 bytes: the published vector's password without its ignored tail.
    .init(password: "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
          hash: "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"),
    .init(password: "Kk4DQuMMfZL9o", hash: "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm"),
    .init(password: "9IeRXmnGxMYbs", hash: "$2b$04$pQ7gRO7e6wx/936oXhNjrOUNOHL1D0h1N2IDbJZYs.1ppzSof6SPy"),
    .init(password: "xVQVbwa1S0M8r", hash: "$2b$04$SQe9knOzepOVKoYXo9xTteNYr6MBwVz4tpriJVe3PNgYufGIsgKcW"),
    .init(password: "dEe6XfVGrrfSH", hash: "$2b$04$2Siw3Nv3Q/gTOIPetAyPr.GNj3aO0lb1E5E9UumYGKjP9BYqlNWJe"),
]

@Suite("Bcrypt")
struct BcryptTests {
    @Test("published vectors verify", arguments: bcryptVectors)
    func vector(_ v: BcryptVector) throws {
        let bcrypt = try Bcrypt(cost: 4)
        #expect(bcrypt.verify(v.password, against: v.hash))
        #expect(!bcrypt.verify(v.password + "x", against: v.hash))
    }

    @Test("$2a$ and $2b$ agree on ASCII passwords; $2y$ is accepted")
    func prefixVariants() throws {
        let bcrypt = try Bcrypt(cost: 4)
        let body = "$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        #expect(bcrypt.verify("U*U", against: "$2a" + body))
        #expect(bcrypt.verify("U*U", against: "$2b" + body))
        #expect(bcrypt.verify("U*U", against: "$2y" + body))
        #expect(!bcrypt.verify("U*U", against: "$2x" + body))
        #expect(!bcrypt.verify("U*U", against: "$2z" + body))
    }

    @Test("wrong passwords and malformed hashes are rejected")
    func rejects() throws {
        let bcrypt = try Bcrypt(cost: 4)
        let good = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        #expect(!bcrypt.verify("U*u", against: good))
        #expect(!bcrypt.verify("", against: good))
        #expect(!bcrypt.verify("U*U", against: String(good.dropLast())))
        #expect(!bcrypt.verify("U*U", against: good + "x"))
        #expect(!bcrypt.verify("U*U", against: String(good.prefix(29))))
        #expect(!bcrypt.verify("U*U", against: "*0"))
        #expect(!bcrypt.verify("U*U", against: "*1"))
        #expect(!bcrypt.verify("U*U", against: ""))
        #expect(!bcrypt.verify("U*U", against: "$2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        #expect(!bcrypt.verify("U*U", against: "$2a$05$CCCCCCCCCCCCCCCCCCCCC?E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        #expect(!bcrypt.verify("U*U", against: "$1$abcdefgh$abcdefghijklmnopqrstuv"))
    }

    @Test("passwords bcrypt would truncate or cut at NUL never verify")
    func verifyRefusesOddPasswords() throws {
        let bcrypt = try Bcrypt(cost: 4)
        // The published vector's full password is 98 bytes; bcrypt ignores bytes past
        // 72, so accepting it would let any suffix match.
        let long = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"
        #expect(!bcrypt.verify(long, against: "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"))
        #expect(!bcrypt.verify("U*U\0tail", against: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
    }

    @Test("hash round-trips with a $2b$04$ prefix and a fresh salt")
    func roundTrip() throws {
        let bcrypt = try Bcrypt(cost: 4)
        let a = try bcrypt.hash("correct horse battery staple")
        let b = try bcrypt.hash("correct horse battery staple")
        #expect(a.hasPrefix("$2b$04$"))
        #expect(a.utf8.count == 60)
        #expect(Bcrypt.isWellFormed(a))
        #expect(a != b)
        #expect(bcrypt.verify("correct horse battery staple", against: a))
        #expect(bcrypt.verify("correct horse battery staple", against: b))
        #expect(!bcrypt.verify("correct horse battery stapler", against: a))
    }

    @Test("hash handles non-ASCII and boundary lengths")
    func boundaries() throws {
        let bcrypt = try Bcrypt(cost: 4)
        let unicode = "pässwörd-密码-🔑"
        #expect(bcrypt.verify(unicode, against: try bcrypt.hash(unicode)))
        let max = String(repeating: "a", count: 72)
        #expect(bcrypt.verify(max, against: try bcrypt.hash(max)))
        #expect(bcrypt.verify("", against: try bcrypt.hash("")))
    }

    @Test("hash refuses a 73-byte password and a NUL byte")
    func hashRefuses() throws {
        let bcrypt = try Bcrypt(cost: 4)
        #expect(throws: CryptoError.self) { try bcrypt.hash(String(repeating: "a", count: 73)) }
        // 71 ASCII bytes + a 2-byte character = 73 UTF-8 bytes.
        #expect(throws: CryptoError.self) { try bcrypt.hash(String(repeating: "a", count: 71) + "é") }
        #expect(throws: CryptoError.self) { try bcrypt.hash("abc\0def") }
    }

    @Test("cost outside 4...31 is refused", arguments: [-1, 0, 3, 32, 100])
    func badCost(_ cost: Int) {
        #expect(throws: CryptoError.self) { try Bcrypt(cost: cost) }
    }

    @Test("the cost is encoded in the hash", arguments: [5, 10])
    func costPrefix(_ cost: Int) throws {
        let bcrypt = try Bcrypt(cost: cost)
        let hash = try bcrypt.hash("pw")
        #expect(hash.hasPrefix(cost == 5 ? "$2b$05$" : "$2b$10$"))
        #expect(bcrypt.verify("pw", against: hash))
    }
}
