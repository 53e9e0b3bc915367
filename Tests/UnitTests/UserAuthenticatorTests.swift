import ChatRuntime
import Foundation
import Testing

@testable import Actors

/// The user authenticator with its verified-token cache: a remembered token is accepted without
/// the verifier only inside its validity window; refused tokens are never remembered.
@Suite("UserAuthenticator")
struct UserAuthenticatorTests {
    static let secret = "user-secret-0123456789"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func request(authorization: String?) -> HTTPRequest {
        var headers = HTTPHeaders()
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        return HTTPRequest(method: .GET, path: "/v1/chats/c/participants", headers: headers)
    }

    static func token(expiresIn seconds: Double? = 600, notBeforeIn notBefore: Double? = nil, secret: String = secret)
        -> String
    {
        JWTSigner.sign(
            JWTClaims(
                subject: "u", expiresAt: seconds.map { now.addingTimeInterval($0) },
                notBefore: notBefore.map { now.addingTimeInterval($0) }),
            secret: Array(secret.utf8))
    }

    static func errorMessage(_ response: HTTPResponse?) -> String? {
        guard let response else { return nil }
        let decoded = try? JSONDecoder().decode([String: [String: String]].self, from: Data(response.body))
        return decoded?["error"]?["message"]
    }

    @Test func acceptsAValidTokenAndRemembersIt() async {
        let users = await UserAuthenticator(secret: Self.secret)
        let request = Self.request(authorization: "Bearer \(Self.token())")
        #expect(await users.reject(request, now: Self.now) == nil)
        #expect(users.rememberedTokens == 1)
        #expect(await users.reject(request, now: Self.now.addingTimeInterval(60)) == nil)
        #expect(users.rememberedTokens == 1)
    }

    @Test func aRememberedTokenIsRefusedOnceExpiredWithTheVerifiersReason() async {
        let users = await UserAuthenticator(secret: Self.secret)
        let request = Self.request(authorization: "Bearer \(Self.token(expiresIn: 600))")
        #expect(await users.reject(request, now: Self.now) == nil)
        // exp + 30 s leeway: still fine one second before, refused at that second.
        #expect(await users.reject(request, now: Self.now.addingTimeInterval(629)) == nil)
        let refused = await users.reject(request, now: Self.now.addingTimeInterval(630))
        #expect(refused?.status == 401)
        #expect(Self.errorMessage(refused) == "invalid token: token expired")
    }

    @Test func aTokenNotYetValidIsRefusedThenAcceptedInItsWindow() async {
        let users = await UserAuthenticator(secret: Self.secret)
        let request = Self.request(authorization: "Bearer \(Self.token(notBeforeIn: 120))")
        #expect(await users.reject(request, now: Self.now)?.status == 401)
        #expect(users.rememberedTokens == 0)
        #expect(await users.reject(request, now: Self.now.addingTimeInterval(100)) == nil)
        #expect(users.rememberedTokens == 1)
        // Remembered, but the window still applies before nbf - leeway.
        #expect(await users.reject(request, now: Self.now)?.status == 401)
    }

    @Test func refusedTokensAreNeverRemembered() async {
        let users = await UserAuthenticator(secret: Self.secret)
        let forged = Self.request(authorization: "Bearer \(Self.token(secret: "another-secret"))")
        for _ in 0..<3 {
            #expect(await users.reject(forged, now: Self.now)?.status == 401)
        }
        #expect(users.rememberedTokens == 0)
        let expired = Self.request(authorization: "Bearer \(Self.token(expiresIn: -3600))")
        #expect(await users.reject(expired, now: Self.now)?.status == 401)
        #expect(users.rememberedTokens == 0)
    }

    @Test func aTamperedCopyOfARememberedTokenIsRefused() async {
        let users = await UserAuthenticator(secret: Self.secret)
        let token = Self.token()
        #expect(await users.reject(Self.request(authorization: "Bearer \(token)"), now: Self.now) == nil)
        var tampered = Array(token.utf8)
        tampered[tampered.count - 2] =
            tampered[tampered.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let request = Self.request(authorization: "Bearer \(String(decoding: tampered, as: UTF8.self))")
        #expect(await users.reject(request, now: Self.now)?.status == 401)
    }

    @Test func theCacheIsBounded() async {
        let users = await UserAuthenticator(secret: Self.secret, tokenCacheCapacity: 3)
        for seconds in 0..<10 {
            let request = Self.request(authorization: "Bearer \(Self.token(expiresIn: Double(600 + seconds)))")
            #expect(await users.reject(request, now: Self.now) == nil)
        }
        #expect(users.rememberedTokens == 3)
    }

    @Test func withoutACacheEveryRequestIsVerified() async {
        let users = await UserAuthenticator(secret: Self.secret, tokenCacheCapacity: 0)
        #expect(await users.reject(Self.request(authorization: "Bearer \(Self.token())"), now: Self.now) == nil)
        #expect(users.rememberedTokens == 0)
    }

    @Test func theImmediatePathAcceptsOnlyRememberedTokensInTheirWindow() async {
        let users = await UserAuthenticator(secret: Self.secret)
        let request = Self.request(authorization: "Bearer \(Self.token(expiresIn: 600))")
        #expect(!users.isRemembered(request, now: Self.now))
        #expect(await users.reject(request, now: Self.now) == nil)
        #expect(users.isRemembered(request, now: Self.now))
        #expect(!users.isRemembered(request, now: Self.now.addingTimeInterval(630)))
        #expect(
            !users.isRemembered(
                Self.request(authorization: "Bearer \(Self.token(secret: "another-secret"))"), now: Self.now))
        #expect(!users.isRemembered(Self.request(authorization: nil), now: Self.now))
    }

    @Test func withoutASecretEverythingIsRefused() async {
        let users = await UserAuthenticator(secret: nil)
        #expect(await users.reject(Self.request(authorization: "Bearer \(Self.token())"), now: Self.now)?.status == 401)
    }

    @Test(arguments: [
        ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER abc", "abc"), ("Bearer   abc  ", "abc"),
        ("Bearer \tabc\t", "abc"), ("Bearer a b", "a b"),
    ])
    func readsBearerTokens(header: String, token: String) {
        #expect(bearerToken(Self.request(authorization: header)).map(String.init) == token)
    }

    @Test(arguments: ["Basic abc", "Bearer", "Bearer ", "Bearer   ", "Bearerabc", "Bearer\tabc", "Bear abc", ""])
    func refusesOtherAuthorizationHeaders(header: String) {
        #expect(bearerToken(Self.request(authorization: header)) == nil)
    }

    @Test func noHeaderNoToken() async {
        #expect(bearerToken(Self.request(authorization: nil)) == nil)
    }
}

/// The verified-token cache on its own.
@Suite("VerifiedTokenCache")
struct VerifiedTokenCacheTests {
    @Test func windowsIncludeTheLeeway() async {
        let claims = JWTClaims(
            expiresAt: Date(timeIntervalSince1970: 1000), notBefore: Date(timeIntervalSince1970: 500))
        let window = VerifiedTokenCache.Window(claims: claims, leewaySeconds: 30)
        #expect(window == .init(notBefore: 470, expiresAt: 1030))
        #expect(!window.contains(469.9))
        #expect(window.contains(470))
        #expect(window.contains(1029.9))
        #expect(!window.contains(1030))
        #expect(VerifiedTokenCache.Window(claims: JWTClaims(), leewaySeconds: 30).contains(-1e18))
    }

    @Test func keysCompareWholeTokens() async {
        let cache = VerifiedTokenCache(capacity: 8)
        cache.remember("abc.def.ghi", window: .init(expiresAt: 1))
        #expect(cache.window(of: "abc.def.ghi") == .init(expiresAt: 1))
        #expect(cache.window(of: "abc.def.ghj") == nil)
        #expect(cache.window(of: "abc.def.gh") == nil)
        #expect(cache.window(of: "xabc.def.ghi".dropFirst()) == .init(expiresAt: 1))
    }
}
