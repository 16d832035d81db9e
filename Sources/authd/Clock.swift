import AuthCore
import Glibc

/// Wall-clock seconds from the kernel.
struct SystemClock: Clock {
    func now() -> Int64 { Int64(time(nil)) }
}
