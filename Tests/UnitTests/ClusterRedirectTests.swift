import ChatRuntime
import Testing

@Suite("ClusterRedirect")
struct ClusterRedirectTests {
    @Test(arguments: [
        (
            "MOVED 3999 127.0.0.1:6381",
            ClusterRedirect.moved(slot: HashSlot(3999)!, to: .init(host: "127.0.0.1", port: 6381))
        ),
        ("ASK 3999 127.0.0.1:6381", .ask(slot: HashSlot(3999)!, to: .init(host: "127.0.0.1", port: 6381))),
        ("MOVED 0 ::1:7000", .moved(slot: HashSlot(0)!, to: .init(host: "::1", port: 7000))),
        ("MOVED 16383 [::1]:7000", .moved(slot: HashSlot(16383)!, to: .init(host: "::1", port: 7000))),
        (
            "MOVED 12 redis-0.cluster.local:6379",
            .moved(slot: HashSlot(12)!, to: .init(host: "redis-0.cluster.local", port: 6379))
        ),
        ("TRYAGAIN Multiple keys request during rehashing of slot", .tryAgain),
        ("CLUSTERDOWN The cluster is down", .clusterDown),
    ])
    func redirects(message: String, expected: ClusterRedirect) {
        #expect(ClusterRedirect(errorMessage: message) == expected)
    }

    @Test(arguments: [
        "ERR unknown command", "MOVED", "MOVED 3999", "MOVED 16384 127.0.0.1:6381", "MOVED x 127.0.0.1:6381",
        "MOVED 1 127.0.0.1", "MOVED 1 127.0.0.1:0", "MOVED 1 127.0.0.1:99999", "MOVED 1 :6379", "ASK -1 h:1", "",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    ])
    func otherErrorsAreNotRedirects(message: String) {
        #expect(ClusterRedirect(errorMessage: message) == nil)
    }
}
