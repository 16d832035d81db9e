import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
enum Termination: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus status: Int32) {
        // WIFEXITED/WEXITSTATUS are C macros and do not import.
        if status & 0x7F == 0 {
            self = .exited((status >> 8) & 0xFF)
        } else {
            self = .signaled(status & 0x7F)
        }
    }

    var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A child started with posix_spawn and reaped with waitpid, so the harness alone
/// decides which environment and which working directory a process gets. (Foundation's
/// Process reaps children on its own thread, which races with an explicit waitpid.)
final class ChildProcess: @unchecked Sendable {
    let name: String
    let pid: pid_t
    private let lock = NSLock()
    private var termination: Termination?

    init(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String],
        directory: String,
        stdoutPath: String,
        stderrPath: String
    ) throws {
        self.name = name
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard addChdir(&actions, directory) == 0 else {
            throw HarnessError("posix_spawn_file_actions_addchdir_np failed for \(directory)")
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test runner may block or ignore signals; a child must not inherit that,
        // or SIGTERM would not stop it.
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw HarnessError("cannot start \(name) (\(executable)): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
    }

    /// The termination if the process has ended; never blocks.
    func poll() -> Termination? {
        lock.lock()
        defer { lock.unlock() }
        if let termination { return termination }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid {
            termination = Termination(waitStatus: status)
        } else if r < 0 && errno == ECHILD {
            termination = .exited(-1)
        }
        return termination
    }

    var isRunning: Bool { poll() == nil }

    func wait(timeout: Double) -> Termination? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let t = poll() { return t }
            usleep(10_000)
        }
        return poll()
    }

    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL when the process is still there after `grace` seconds.
    @discardableResult
    func stop(grace: Double = 5) -> Termination {
        if let t = poll() { return t }
        kill(pid, SIGTERM)
        if let t = wait(timeout: grace) { return t }
        kill(pid, SIGKILL)
        return wait(timeout: 10) ?? .signaled(SIGKILL)
    }
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+) is declared only under
/// _GNU_SOURCE, so Swift does not see it: look it up at run time.
private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
private let addChdir: AddChdir = {
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else {
        fatalError("this libc has no posix_spawn_file_actions_addchdir_np")
    }
    return unsafeBitCast(symbol, to: AddChdir.self)
}()

/// Runs a short command to completion (at most `timeout` seconds) and returns its
/// termination and combined output.
func runCommand(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
    directory: String,
    timeout: Double = 10
) throws -> (termination: Termination, output: String) {
    let outputPath = directory + "/cmd-\(UUID().uuidString).out"
    defer { unlink(outputPath) }
    let child = try ChildProcess(
        name: executable, executable: executable, arguments: arguments,
        environment: environment, directory: directory,
        stdoutPath: outputPath, stderrPath: outputPath)
    guard let termination = child.wait(timeout: timeout) else {
        child.stop(grace: 1)
        throw HarnessError("\(executable) \(arguments) did not finish within \(timeout) s")
    }
    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return (termination, output)
}
