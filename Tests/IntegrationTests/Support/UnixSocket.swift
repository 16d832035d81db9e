import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A unix stream socket connected to `path`, or listening on it: the one place the test
/// harness builds a `sockaddr_un`.
func unixSocket(_ path: String, listen doListen: Bool = false) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
    }
    let size = socklen_t(MemoryLayout<sockaddr_un>.size)
    // A unix-socket connect does not wait for accept: it returns once queued.
    let rc = withUnsafePointer(to: &address) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { doListen ? bind(fd, $0, size) : connect(fd, $0, size) }
    }
    guard rc == 0, !doListen || listen(fd, 128) == 0 else {
        let cause = String(cString: strerror(errno))
        close(fd)
        throw HarnessError("\(doListen ? "bind" : "connect") \(path): \(cause)")
    }
    return fd
}
