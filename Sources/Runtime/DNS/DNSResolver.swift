import CLibEvent
import Glibc

/// Resolves host names without blocking the loop: libevent's evdns on the ``EventLoop`` it
/// belongs to (``EventLoop/resolver``), for the HTTP client and Redis connections.
///
/// evdns reads the nameservers, search domains and options of
/// ``ResolverSettings/resolvConfPath`` and the host's `/etc/hosts` once, on the first lookup.
/// Numeric addresses are answered at once without a lookup. Every lookup is bounded by the
/// caller's `timeout` (whatever evdns' own retry options say), and asks for IPv4 and IPv6 at
/// once. Answers are not cached: callers resolve again before every connection, so a server that
/// moves to a new address behind the same name is followed at the next reconnect.
///
/// The actor runs on its loop's executor, so the evdns base, its callbacks and the timers all
/// live on the loop thread.
public actor DNSResolver {
    public nonisolated let unownedExecutor: UnownedSerialExecutor
    public nonisolated let settings: ResolverSettings
    private let loop: EventLoop
    /// Created on the first lookup, on the loop thread; lives as long as the loop (the process).
    private var base: OpaquePointer?
    private var lookups: [UInt64: DNSLookup] = [:]
    private var nextLookupID: UInt64 = 0

    init(loop: EventLoop, settings: ResolverSettings) {
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.loop = loop
        self.settings = settings
    }

    /// The addresses of `host` (numeric strings, IPv4 before IPv6 in the resolver's order), or
    /// the reason there are none. `host` may already be an address (IPv6 without brackets).
    public func resolve(_ host: String, timeout: Duration) async throws(DNSResolutionError) -> [String] {
        if NumericHost.isNumeric(host) { return [host] }
        guard !host.isEmpty, !host.utf8.contains(0) else {
            throw DNSResolutionError(code: .notFound, host: host, message: "not a host name")
        }
        guard !loop.isStopped else {
            throw DNSResolutionError(code: .cancelled, host: host, message: "event loop \(loop.name) is stopped")
        }
        let base = evdnsBase()
        let id = nextLookupID
        nextLookupID += 1
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<[String], DNSResolutionError>, Never>) in
                if Task.isCancelled {
                    continuation.resume(
                        returning: .failure(
                            DNSResolutionError(code: .cancelled, host: host, message: "the task was cancelled")))
                    return
                }
                let lookup = DNSLookup(host: host, loop: loop) { [self] result in
                    // Isolated to this actor: runs from evdns callbacks and timers on the loop.
                    lookups[id] = nil
                    continuation.resume(returning: result)
                }
                lookups[id] = lookup
                lookup.start(base: base, timeout: timeout)
            }
        } onCancel: { [loop] in
            Task(executorPreference: loop) { await self.cancel(id) }
        }
        return try result.get()
    }

    private func cancel(_ id: UInt64) {
        lookups[id]?.finish(
            .failure(
                DNSResolutionError(code: .cancelled, host: lookups[id]?.host ?? "", message: "the task was cancelled")))
    }

    private func evdnsBase() -> OpaquePointer {
        if let base { return base }
        // No nameserver from evdns_base_new itself: the configured file decides.
        guard let created = evdns_base_new(loop.base, 0) else { fatalError("evdns_base_new failed") }
        // Nameservers, search list and options from the file, and the hosts file (/etc/hosts).
        // A file that cannot be read leaves evdns' defaults: nameserver 127.0.0.1, no search.
        // (DNS_OPTIONS_ALL, which Swift does not import: a macro over several others.)
        let everything = DNS_OPTION_SEARCH | DNS_OPTION_NAMESERVERS | DNS_OPTION_MISC | DNS_OPTION_HOSTSFILE
        _ = evdns_base_resolv_conf_parse(created, everything, settings.resolvConfPath)
        base = created
        return created
    }
}

/// One evdns lookup, from `evdns_getaddrinfo` to its single outcome.
///
/// evdns calls back exactly once per request: with the answer, with an error, or with
/// `EVUTIL_EAI_CANCEL` from inside `evdns_getaddrinfo_cancel`; it may also call back before
/// `evdns_getaddrinfo` returns (a name from the hosts file), and then returns NULL. The retain
/// the callback reads is released in that callback, so it never dangles.
private final class DNSLookup {
    let host: String
    private let loop: EventLoop
    private var completion: ((Result<[String], DNSResolutionError>) -> Void)?
    private var request: OpaquePointer?
    private var timer: LoopTimer?
    private var callbackPending = false

    init(host: String, loop: EventLoop, completion: @escaping (Result<[String], DNSResolutionError>) -> Void) {
        self.host = host
        self.loop = loop
        self.completion = completion
    }

    func start(base: OpaquePointer, timeout: Duration) {
        let timer = LoopTimer(loop: loop) { [self] in
            finish(
                .failure(
                    DNSResolutionError(
                        code: .timeout, host: host, message: "no answer from the resolver within \(timeout)")))
        }
        self.timer = timer
        timer.schedule(after: timeout)

        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        let context = Unmanaged.passRetained(self)
        callbackPending = true
        let request = evdns_getaddrinfo(
            base, host, nil, &hints,
            { result, addresses, context in
                let lookup = Unmanaged<DNSLookup>.fromOpaque(context!).takeRetainedValue()
                lookup.answered(result: result, addresses: addresses)
            }, context.toOpaque())
        // NULL when evdns already called back (or failed, and called back with the error).
        if callbackPending { self.request = request }
    }

    /// Ends the lookup with `result` (a timeout, a cancellation); an evdns request still out is
    /// cancelled, and its callback then finds the lookup finished.
    func finish(_ result: Result<[String], DNSResolutionError>) {
        guard let completion else { return }
        self.completion = nil
        timer?.cancel()
        timer = nil
        if let request {
            self.request = nil
            evdns_getaddrinfo_cancel(request)
        }
        completion(result)
    }

    private func answered(result: Int32, addresses: UnsafeMutablePointer<addrinfo>?) {
        callbackPending = false
        request = nil
        defer { if let addresses { evutil_freeaddrinfo(addresses) } }
        guard completion != nil else { return }
        if result == EAI_FAIL || result == EAI_AGAIN {
            // evdns reports its own retries running out (resolv.conf's timeout and attempts)
            // like a SERVFAIL.
            finish(
                .failure(
                    DNSResolutionError(code: .failed, host: host, message: "the nameservers did not answer or failed")))
            return
        }
        if result != 0 {
            let reason =
                result == EVUTIL_EAI_CANCEL ? "the lookup was cancelled" : String(cString: evutil_gai_strerror(result))
            finish(.failure(DNSResolutionError(code: .notFound, host: host, message: reason)))
            return
        }
        let found = Self.numericAddresses(addresses)
        if found.isEmpty {
            finish(
                .failure(
                    DNSResolutionError(code: .notFound, host: host, message: "the name has no IPv4 or IPv6 address")))
        } else {
            finish(.success(found))
        }
    }

    /// The addresses of an addrinfo list as numeric strings, without repeats, IPv4 first.
    private static func numericAddresses(_ list: UnsafeMutablePointer<addrinfo>?) -> [String] {
        var v4: [String] = []
        var v6: [String] = []
        var node = list
        while let current = node {
            if let address = current.pointee.ai_addr,
                let text = numericHost(address, length: current.pointee.ai_addrlen)
            {
                if Int32(address.pointee.sa_family) == AF_INET6 {
                    if !v6.contains(text) { v6.append(text) }
                } else if !v4.contains(text) {
                    v4.append(text)
                }
            }
            node = current.pointee.ai_next
        }
        return v4 + v6
    }

    private static func numericHost(_ address: UnsafeMutablePointer<sockaddr>, length: socklen_t) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else {
            return nil
        }
        return CString.string(buffer)
    }
}
