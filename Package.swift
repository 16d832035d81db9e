// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "authd",
    products: [
        .executable(name: "authd", targets: ["authd"]),
        // For the fuzz targets in Fuzz/, a package of its own that depends on this one.
        .library(name: "AuthCore", targets: ["AuthCore"]),
        .library(name: "AuthCrypto", targets: ["AuthCrypto"]),
        .library(name: "AuthFastCGI", targets: ["AuthFastCGI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // No traits: the default JSON trait links all of Foundation (JSONSerialization),
        // several MiB of resident memory per process for a file format authd never reads.
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: []),
        // FilePath for the .env path (swift-configuration's API takes one); declared, not
        // borrowed from swift-configuration's own dependencies.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C libraries from Debian, each imported by exactly one Swift target.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CXCrypt", pkgConfig: "libxcrypt", providers: [.apt(["libcrypt-dev"])]),
        // Per-thread priority (the password lane's threads): libc only, nothing to link.
        .systemLibrary(name: "CThreads"),

        // Pure Swift: requests, responses, JWT, validation, handlers. Imports no C.
        .target(name: "AuthCore", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .target(name: "AuthCrypto", dependencies: ["AuthCore", "CLibCrypto", "CXCrypt", "CThreads"]),
        .target(name: "AuthRedis", dependencies: ["AuthCore", "AuthCrypto", "CHiredis"]),
        // System calls through one layer: EINTR retried, errno turned into a SystemError.
        .target(name: "AuthSystem"),
        .target(name: "AuthFastCGI", dependencies: ["AuthCore", "AuthSystem", "CFastCGI"]),
        // Test doubles shared by the test targets (MemoryStore, TestClock); not a product.
        .target(name: "AuthTesting", dependencies: ["AuthCore"]),
        .executableTarget(
            name: "authd",
            dependencies: [
                "AuthCore", "AuthCrypto", "AuthRedis", "AuthFastCGI", "AuthSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        .testTarget(name: "AuthCoreTests", dependencies: ["AuthCore", "AuthTesting"]),
        .testTarget(name: "AuthCryptoTests", dependencies: ["AuthCore", "AuthCrypto"]),
        .testTarget(name: "AuthSystemTests", dependencies: ["AuthSystem"]),
        .testTarget(name: "AuthFastCGITests", dependencies: ["AuthFastCGI", "AuthCore", "AuthSystem", "AuthTesting"]),
        // The same test bodies against MemoryStore and RedisStore on a redis-server it starts
        // on a unix socket (redis-server on PATH).
        .testTarget(name: "StoreConformanceTests", dependencies: ["AuthCore", "AuthRedis", "AuthTesting"]),
        // Starts real redis-server, authd and nginx on loopback; needs the authd binary built.
        .testTarget(name: "IntegrationTests", dependencies: ["authd"]),
    ]
)
