internal import CLibFuzzer

/// Starts libFuzzer. SwiftPM links every executable with `--defsym main=<Module>_main`
/// (so that tests can link executables), a symbol a `-parse-as-library` target never
/// defines; each target defines it as a call to this, which is what libFuzzer's own
/// `main` would have done.
public func runLibFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var argc = argc, argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}
