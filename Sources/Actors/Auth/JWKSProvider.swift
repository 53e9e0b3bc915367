public import ChatRuntime
import Foundation
import JWTKit
public import Logging
import Metrics
public import ServiceLifecycle

/// The identity provider's signing keys (JWT_JWKS_URL): fetched from its JWKS with the
/// service's own HTTP client on the loop (http or https), kept in memory, and fetched again
///
/// - at start, and then with backoff (1 s doubling to 30 s) until a fetch succeeds;
/// - every ``Settings/refreshInterval`` afterwards, so keys the provider retired go too;
/// - when a token names a `kid` the set does not hold, at most once per
///   ``Settings/unknownKeyRefetchInterval`` (a rotation is picked up at once, a stream of
///   forged `kid`s cannot make it hammer the provider).
///
/// A failed fetch keeps the last good set: the provider being down never turns known keys
/// away. Until the first fetch succeeds there is no set, and tokens that need one are answered
/// 503 (``TokenError/keysUnavailable``), never accepted. Keys without a `kid` or of a type
/// jwt-kit cannot use are skipped (and logged); a document without one usable key counts as a
/// failed fetch.
///
/// A `Service`: ``run()`` keeps the set fresh for the life of the process.
public actor JWKSProvider: Service {
    public struct Settings: Sendable {
        public var refreshInterval: Duration = .seconds(600)
        public var unknownKeyRefetchInterval: Duration = .seconds(30)
        /// Bound for one fetch: lookup, connect and the whole response.
        public var fetchTimeout: Duration = .seconds(5)
        public var retryBackoff = Backoff(initial: .seconds(1), maximum: .seconds(30))

        public init() {}
    }

    /// What a token's `kid` finds.
    enum Lookup {
        case found(JWTKeyCollection)
        /// No key set fetched yet.
        case unavailable
        /// The set, even fetched again, does not hold the `kid`.
        case unknownKey
    }

    private struct KeySet {
        let collection: JWTKeyCollection
        let keyIDs: Set<String>
    }

    public nonisolated let unownedExecutor: UnownedSerialExecutor
    /// JWT_JWKS_URL.
    public nonisolated let url: String
    private let http: HTTPClient
    private let path: String
    private let settings: Settings
    private let logger: Logger
    private var keySet: KeySet?
    private var lastAttempt: ContinuousClock.Instant?
    private var fetching = false
    private var fetchWaiters: [CheckedContinuation<Void, Never>] = []
    private var random = SystemRandomNumberGenerator()
    private let successes = Counter(label: "jwks_fetches_total", dimensions: [("outcome", "success")])
    private let failures = Counter(label: "jwks_fetches_total", dimensions: [("outcome", "failure")])
    private let keyCount = Gauge(label: "jwks_keys")

    /// - Parameters:
    ///   - url: `http[s]://host[:port]/path[?query]`.
    ///   - tls: how an https provider is verified; nil trusts the system's CA store.
    public init(
        url: String, loop: EventLoop, tls: TLSClientContext? = nil, settings: Settings = Settings(), logger: Logger
    ) throws(HTTPClientError) {
        guard let split = Self.split(url) else {
            throw HTTPClientError(code: .invalidURL, message: "not an http[s]://host[:port]/path URL: \(url)")
        }
        self.unownedExecutor = loop.asUnownedSerialExecutor()
        self.url = url
        self.path = split.path
        self.http = try HTTPClient(loop: loop, baseURL: split.base, tls: tls, maxConnections: 1, logger: logger)
        self.settings = settings
        var logger = logger
        logger[metadataKey: "jwks.url"] = "\(url)"
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.keepFresh() }
        await http.close()
    }

    private func keepFresh() async {
        var failedAttempts = 0
        while !Task.isCancelled {
            let fetched = await refresh()
            failedAttempts = fetched ? 0 : failedAttempts + 1
            let wait =
                fetched
                ? settings.refreshInterval : settings.retryBackoff.delay(attempt: failedAttempts, random: &random)
            // Timed: nothing signals that the provider is back or has rotated its keys.
            do { try await Task.sleep(for: wait) } catch { return }
        }
    }

    /// Whether a key set is in hand.
    public var hasKeys: Bool { keySet != nil }

    /// The key ids of the set in hand; for tests and the start-up log.
    public var keyIDs: Set<String> { keySet?.keyIDs ?? [] }

    /// The keys that may check a token with `keyID` (nil: any key of the set).
    func keys(for keyID: String?) async -> Lookup {
        guard let current = keySet else { return .unavailable }
        guard let keyID, !current.keyIDs.contains(keyID) else { return .found(current.collection) }
        if let lastAttempt, ContinuousClock.now - lastAttempt < settings.unknownKeyRefetchInterval {
            return .unknownKey
        }
        logger.info(
            "token names an unknown key id; fetching the key set again", metadata: ["jwks.kid": "\(keyID.prefix(64))"])
        await refresh()
        guard let refreshed = keySet, refreshed.keyIDs.contains(keyID) else { return .unknownKey }
        return .found(refreshed.collection)
    }

    /// Fetches the set now, or waits for the fetch already running. True when it succeeded.
    @discardableResult
    public func refresh() async -> Bool {
        if fetching {
            // Re-checked inside the body: the fetch may end between the check and the wait.
            await withCheckedContinuation { continuation in
                if fetching { fetchWaiters.append(continuation) } else { continuation.resume() }
            }
            return keySet != nil
        }
        fetching = true
        lastAttempt = .now
        let fetched = await fetchOnce()
        fetching = false
        let waiters = fetchWaiters
        fetchWaiters = []
        for waiter in waiters { waiter.resume() }
        return fetched
    }

    private func fetchOnce() async -> Bool {
        let response: HTTPClientResponse
        do {
            response = try await http.execute(
                method: .GET, path: path, headers: [("Accept", "application/json")], timeout: settings.fetchTimeout)
        } catch {
            return failed("fetching the key set failed: \(error.message)")
        }
        guard response.status == 200 else {
            return failed("the key set answered \(response.status)")
        }
        let jwks: JWKS
        do {
            jwks = try JSONDecoder().decode(JWKS.self, from: Data(response.body))
        } catch {
            return failed("the key set is not a JWKS document: \(error)")
        }
        let collection = JWTKeyCollection()
        var keyIDs: Set<String> = []
        var skipped: [String] = []
        for key in jwks.keys {
            guard let keyID = key.keyIdentifier?.string else {
                skipped.append("a key without kid")
                continue
            }
            do {
                try await collection.add(jwk: key, isDefault: false)
                keyIDs.insert(keyID)
            } catch {
                skipped.append("\(keyID): \(error)")
            }
        }
        if !skipped.isEmpty {
            logger.warning("key set entries skipped", metadata: ["jwks.skipped": "\(skipped.joined(separator: "; "))"])
        }
        guard !keyIDs.isEmpty else { return failed("the key set holds no usable key") }
        let previous = keySet?.keyIDs
        keySet = KeySet(collection: collection, keyIDs: keyIDs)
        successes.increment()
        keyCount.record(keyIDs.count)
        if previous != keyIDs {
            logger.info("key set loaded", metadata: ["jwks.kids": "\(keyIDs.sorted().joined(separator: ","))"])
        }
        return true
    }

    private func failed(_ reason: String) -> Bool {
        failures.increment()
        logger.warning("\(reason)", metadata: ["jwks.keys_in_hand": "\(keySet?.keyIDs.count ?? 0)"])
        return false
    }

    /// `https://idp/realms/x/certs?y` → (`https://idp`, `/realms/x/certs?y`).
    static func split(_ url: String) -> (base: String, path: String)? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let afterScheme = url[schemeEnd.upperBound...]
        let pathStart = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let base = String(url[..<pathStart])
        var path = String(url[pathStart...])
        if path.isEmpty || path.first == "?" { path = "/" + path }
        guard !afterScheme.isEmpty, pathStart != afterScheme.startIndex else { return nil }
        return (base, path)
    }
}
