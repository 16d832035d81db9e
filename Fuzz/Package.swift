// swift-tools-version:6.1
// libFuzzer targets for authd, in a package of their own so that the main package's
// `swift build`/`swift test` never see the fuzzer flags. Build and run: scripts/fuzz.sh.
import PackageDescription

// SwiftPM names a path dependency after its folder, which depends on the checkout.
let authd = String(#filePath.split(separator: "/").dropLast(2).last!).lowercased()

let package = Package(
    name: "authd-fuzz",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        // Keys, clock, stub store and checks shared by the targets.
        .target(name: "FuzzSupport", dependencies: [
            "CLibFuzzer",
            .product(name: "AuthCore", package: authd),
            .product(name: "AuthCrypto", package: authd),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "FuzzJWT", dependencies: ["FuzzSupport", .product(name: "AuthCore", package: authd)]),
        .executableTarget(name: "FuzzBody", dependencies: ["FuzzSupport", .product(name: "AuthCore", package: authd)]),
        .executableTarget(name: "FuzzFraming", dependencies: ["FuzzSupport", .product(name: "AuthFastCGI", package: authd)]),
        .executableTarget(name: "FuzzParams", dependencies: [
            "FuzzSupport", .product(name: "AuthCore", package: authd), .product(name: "AuthFastCGI", package: authd),
        ]),
    ]
)
