import Testing

@testable import Actors

@Suite("DurationParsing")
struct DurationParsingTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)),
        ("30s", .seconds(30)),
        ("15m", .seconds(900)),
        ("1h", .seconds(3600)),
        ("1d", .seconds(86_400)),
        ("30", .seconds(30)),
        ("0", .zero),
        ("0s", .zero),
        ("0ms", .zero),
        ("007s", .seconds(7)),
        ("1h30m", .seconds(5400)),
        ("1d2h3m4s5ms", .milliseconds(93_784_005)),
        ("1s500ms", .milliseconds(1500)),
        ("90m", .seconds(5400)),
        ("1500ms", .milliseconds(1500)),
        ("9223372036854775ms", .milliseconds(9_223_372_036_854_775)),
        ("106751991167d", .seconds(106_751_991_167 * 86_400)),
        ("9223372036854775807ms", .milliseconds(Int64.max)),
    ])
    func parsesValidDurations(_ text: String, _ expected: Duration) {
        #expect(parseDuration(text) == expected)
    }

    @Test(arguments: [
        "", " ", "-1", "-5s", "+5s", "1.5s", "1,5s", "5 s", " 5s", "5s ", "s", "ms", "5x", "5sec", "5S", "5MS",
        "5H", "1m1h", "1s1s", "1s1m", "500ms1s", "1h30", "5ss", "5mss", "1e3", "0x10", "9223372036854775808",
        "9223372036854775807", "9223372036854775808ms", "106751991168d", "1d9223372036854775807ms",
        "99999999999999999999s", "５s",
        "\u{0}5s", "5s\n",
    ])
    func rejectsInvalidDurations(_ text: String) {
        #expect(parseDuration(text) == nil, "\(text)")
    }

    @Test(arguments: [
        (Duration.zero, "0s"),
        (.milliseconds(500), "500ms"),
        (.seconds(30), "30s"),
        (.seconds(900), "15m"),
        (.seconds(3600), "1h"),
        (.seconds(86_400), "1d"),
        (.seconds(5400), "1h30m"),
        (.milliseconds(1500), "1s500ms"),
        (.milliseconds(93_784_005), "1d2h3m4s5ms"),
        (.seconds(-90), "-1m30s"),
        (.milliseconds(-1), "-1ms"),
        (.seconds(86_400 * 400), "400d"),
    ])
    func formatsDurations(_ duration: Duration, _ expected: String) {
        #expect(formatDuration(duration) == expected)
    }

    @Test func subMillisecondDurationsFallBackToSwiftNotation() {
        let text = formatDuration(.microseconds(1500))
        #expect(text == "\(Duration.microseconds(1500))")
        #expect(parseDuration(text) == nil)
    }

    @Test func formattingRoundTripsThroughParsing() {
        var random = SeededRandom(seed: 11)
        for _ in 0..<2000 {
            let duration = Duration.milliseconds(Int64.random(in: 0...(400 * 86_400_000), using: &random))
            let text = formatDuration(duration)
            #expect(parseDuration(text) == duration, "\(text)")
        }
    }
}
