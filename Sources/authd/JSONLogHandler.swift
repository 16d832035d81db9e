import AuthCore
import Glibc
import Logging

/// One JSON object per line on stderr, for journald and log shippers:
/// `{"time":"2026-11-26T21:40:00.123Z","level":"info","message":"...","request_id":"...",...}`.
/// Metadata becomes top-level fields (a field named like a fixed one gets a `meta_` prefix).
/// Each line is a single write(2), so lines of concurrent workers never interleave.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    let label: String

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let fixed: Set<String> = ["time", "level", "message", "logger"]

    func log(event: LogEvent) {
        var w = JSONWriter()
        w.beginObject()
        w.field("time", Self.timestamp())
        w.field("level", event.level.rawValue)
        w.field("logger", label)
        w.field("message", "\(event.message)")
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            w.field(Self.fixed.contains(key) ? "meta_" + key : key, Self.flatten(value))
        }
        w.endObject()
        var line = w.bytes
        line.append(0x0A)
        line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    private static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let items): "[" + items.map(flatten).joined(separator: ", ") + "]"
        case .dictionary(let d): "{" + d.sorted { $0.key < $1.key }.map { "\($0.key): \(flatten($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    /// UTC, millisecond precision, ISO 8601.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return ISO8601.format(Int64(now.tv_sec), milliseconds: now.tv_nsec / 1_000_000)
    }
}
