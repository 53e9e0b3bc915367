import Testing

@testable import StubUpstream

@Suite("StubFaults")
struct StubFaultsTests {
    static func patch(_ json: String, onto faults: StubFaults = StubFaults()) -> Result<StubFaults, StubFaultsError> {
        do { return .success(try faults.applying(patch: Array(json.utf8))) } catch { return .failure(error) }
    }

    @Test func partialUpdatesKeepTheOtherKnobs() throws {
        let first = try Self.patch(#"{"error_rate":0.25,"latency":"150ms","hang":true}"#).get()
        #expect(first.errorRate == 0.25)
        #expect(first.latency == .milliseconds(150))
        #expect(first.hang)
        let second = try Self.patch(#"{"hang":false,"malformed_kind":"truncated","fail_next":2,"fail_status":429}"#, onto: first).get()
        #expect(second.errorRate == 0.25 && second.latency == .milliseconds(150))
        #expect(!second.hang && second.malformedKind == .truncated && second.failNext == 2 && second.failStatus == 429)
        #expect(try Self.patch("{}", onto: second).get() == second)
    }

    @Test func theShownJSONReadsBackAsTheSameFaults() throws {
        var faults = StubFaults()
        faults.latency = .milliseconds(1500)
        faults.latencyJitter = .milliseconds(20)
        faults.errorRate = 0.125
        faults.rate429 = 1
        faults.retryAfterSeconds = 3
        faults.malformedRate = 0.5
        faults.malformedKind = .wrongTypes
        faults.hang = true
        faults.partialRate = 0.75
        faults.failNext = 4
        faults.failStatus = 500
        faults.seed = 99
        let shown = String(decoding: faults.jsonBytes(), as: UTF8.self)
        #expect(try Self.patch(shown).get() == faults)
        #expect(!faults.isEmpty)
        #expect(StubFaults().isEmpty)
    }

    @Test(arguments: [
        (#"{"bogus":1}"#, "bogus"), (#"{"error_rate":2}"#, "error_rate"), (#"{"error_rate":"0.5"}"#, "error_rate"),
        (#"{"hang":1}"#, "hang"), (#"{"latency":"fast"}"#, "latency"), (#"{"fail_status":200}"#, "fail_status"),
        (#"{"malformed_kind":"weird"}"#, "malformed_kind"), (#"{"fail_next":1.5}"#, "fail_next"), ("[1]", "object"),
        ("nope", "object"),
    ])
    func refusesBadSettingsNamingTheKey(json: String, named: String) {
        guard case .failure(let error) = Self.patch(json) else {
            Issue.record("accepted \(json)")
            return
        }
        #expect(error.message.contains(named), "\(error.message)")
    }

    @Test func optionsAreCheckedNamingTheFlag() throws {
        var options = StubUpstreamOptions()
        options.errorRate = 0.5
        options.latency = "20ms"
        options.token = ""
        let resolved = try options.resolved()
        #expect(resolved.settings.faults.errorRate == 0.5)
        #expect(resolved.settings.faults.latency == .milliseconds(20))
        #expect(resolved.settings.token == nil)
        #expect(resolved.settings.chats == 1000 && resolved.settings.participantsPerChat == 20)

        let bad: [(inout StubUpstreamOptions) -> Void] = [
            { $0.rate429 = 1.5 }, { $0.latency = "1 second" }, { $0.port = 70000 }, { $0.maxBatch = 0 },
            { $0.malformedKind = "html" }, { $0.logLevel = "loud" }, { $0.maxHang = "0s" },
        ]
        for change in bad {
            var options = StubUpstreamOptions()
            change(&options)
            #expect(throws: StubUpstreamOptions.Invalid.self) { try options.resolved() }
        }
    }
}
