/// ISO 8601 UTC timestamps without Foundation.
public enum ISO8601 {
    /// `2026-11-26T18:17:27Z` for Unix seconds; `2026-11-26T18:17:27.042Z` with `milliseconds`.
    public static func format(_ seconds: Int64, milliseconds: Int? = nil) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = seconds - days * 86400
        // Civil-from-days (H. Hinnant), exact for the proleptic Gregorian calendar.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let fraction = milliseconds.map { ms in "." + (ms < 10 ? "00" : ms < 100 ? "0" : "") + String(ms) } ?? ""
        return "\(y)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))\(fraction)Z"
    }
}
