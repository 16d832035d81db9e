import AuthFastCGI
import FuzzSupport

@_cdecl("FuzzFraming_main")  // see runLibFuzzer
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzFraming)
}

/// The input as the bytes a FastCGI connection has queued. The framing check must never
/// trap, must place a complete request inside the bytes, and must agree with itself: the
/// request alone is complete at the same end, and every strict prefix of it is incomplete
/// or already refused (never complete elsewhere).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFraming(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let maxBody = 512
    guard case .complete(let end, _) = FastCGIFraming.scan(bytes, maxBody: maxBody) else { return 0 }
    precondition(end > 0 && end <= size, "complete at \(end) of \(size) bytes")
    let alone = UnsafeRawBufferPointer(rebasing: bytes[..<end])
    precondition(FastCGIFraming.scan(alone, maxBody: maxBody) == .complete(end: end, next: nil), "the request alone")
    for cut in stride(from: 0, to: end, by: max(1, end / 64)) {
        if case .complete = FastCGIFraming.scan(UnsafeRawBufferPointer(rebasing: bytes[..<cut]), maxBody: maxBody) {
            preconditionFailure("a prefix of \(cut) bytes is complete too")
        }
    }
    return 0
}
