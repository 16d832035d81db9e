import AuthCore
import Testing

/// The one ISO 8601 formatter (API timestamps and log lines), against dates worked out by hand.
@Suite struct ISO8601Tests {
    @Test func wholeSeconds() {
        #expect(ISO8601.format(0) == "1970-01-01T00:00:00Z")
        #expect(ISO8601.format(951_782_400) == "2000-02-29T00:00:00Z")  // a leap day of a 400-year leap year
        #expect(ISO8601.format(1_764_181_047) == "2025-11-26T18:17:27Z")
        #expect(ISO8601.format(-1) == "1969-12-31T23:59:59Z")
    }

    @Test func milliseconds() {
        #expect(ISO8601.format(0, milliseconds: 7) == "1970-01-01T00:00:00.007Z")
        #expect(ISO8601.format(0, milliseconds: 42) == "1970-01-01T00:00:00.042Z")
        #expect(ISO8601.format(0, milliseconds: 999) == "1970-01-01T00:00:00.999Z")
        #expect(ISO8601.format(0, milliseconds: 0) == "1970-01-01T00:00:00.000Z")
    }
}
