import Crypto
import Foundation
import JWTKit
import Logging
import TestSupport

@testable import ChatRuntime

/// A stand-in identity provider for tests: RSA (RS256), P-256 (ES256) and Ed25519 (EdDSA) keys
/// made at test time, their public halves served as a JWKS by an HTTP server on 127.0.0.1
/// (the service's own server), and tokens signed with them.
final class IdentityProvider: Sendable {
    enum Key: String, CaseIterable, Sendable {
        case rsa = "rsa-1", ec = "ec-1", ed = "ed-1", rotated = "rsa-2"
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim?
        var exp: ExpirationClaim?
        var iss: IssuerClaim?
        var aud: AudienceClaim?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    let loop: EventLoop
    let rsaPEM: String
    private let signing: JWTKeyCollection
    private let jwks: [Key: String]
    private let served: AnnotatedMutex<Served>
    private let server: AnnotatedMutex<HTTPServer?>

    private struct Served {
        var keys: Set<Key>
        var failing = false
        var requests = 0
        var port: Int?
    }

    /// - Parameter serving: the keys the JWKS lists at first.
    init(serving: Set<Key> = [.rsa, .ec, .ed]) async throws {
        loop = EventLoop(name: "identity-provider")
        let rsa = try JWTKit.Insecure.RSA.PrivateKey(
            pem: try Self.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]))
        let rotated = try JWTKit.Insecure.RSA.PrivateKey(
            pem: try Self.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]))
        let ec = ES256PrivateKey()
        let ed = try EdDSA.PrivateKey(curve: .ed25519)
        rsaPEM = rsa.publicKey.pemRepresentation
        signing = JWTKeyCollection()
        await signing.add(rsa: rsa, digestAlgorithm: .sha256, kid: JWKIdentifier(string: Key.rsa.rawValue))
        await signing.add(rsa: rotated, digestAlgorithm: .sha256, kid: JWKIdentifier(string: Key.rotated.rawValue))
        await signing.add(ecdsa: ec, kid: JWKIdentifier(string: Key.ec.rawValue))
        await signing.add(eddsa: ed, kid: JWKIdentifier(string: Key.ed.rawValue))
        jwks = [
            .rsa: try Self.rsaJWK(rsa.publicKey, kid: Key.rsa.rawValue),
            .rotated: try Self.rsaJWK(rotated.publicKey, kid: Key.rotated.rawValue),
            .ec:
                #"{"kty":"EC","kid":"ec-1","alg":"ES256","use":"sig","crv":"P-256","x":"\#(ec.publicKey.parameters!.x)","y":"\#(ec.publicKey.parameters!.y)"}"#,
            .ed:
                #"{"kty":"OKP","kid":"ed-1","alg":"EdDSA","use":"sig","crv":"Ed25519","x":"\#(Self.base64URL(ed.publicKey.rawRepresentation))"}"#,
        ]
        served = AnnotatedMutex(Served(keys: serving))
        server = AnnotatedMutex(nil)
    }

    /// Starts serving `GET /realms/chat/certs` (again after ``stop()``, on the same port).
    func start() async throws {
        var router = HTTPRouter()
        router.add(.GET, "/realms/chat/certs") { [self] _ in document() }
        let server = HTTPServer(loop: loop, router: router, logger: Logger(label: "test.identity-provider"))
        let port = try await server.start(host: "127.0.0.1", port: served.withLock { $0.port } ?? 0)
        served.withLock { $0.port = port }
        self.server.withLock { $0 = server }
    }

    /// Stops the server: the provider is down (connections refused).
    func stop() async {
        guard
            let server = server.withLock({ state -> HTTPServer? in
                defer { state = nil }; return state
            })
        else { return }
        await server.stop()
    }

    func shutdown() async {
        await stop()
        loop.stop()
    }

    var jwksURL: String { "http://127.0.0.1:\(served.withLock { $0.port } ?? 0)/realms/chat/certs" }
    var requests: Int { served.withLock { $0.requests } }
    func serve(_ keys: Set<Key>) { served.withLock { $0.keys = keys } }
    /// Answer 503 (true) or the key set (false).
    func fail(_ failing: Bool) { served.withLock { $0.failing = failing } }

    /// A token signed with `key`, with `kid` = the key's id unless `kid` says otherwise.
    func token(
        _ key: Key, subject: String = "alice", expiresIn: TimeInterval = 600, issuer: String? = nil,
        audience: [String]? = nil,
        now: Date = Date()
    ) async throws -> String {
        let claims = Claims(
            sub: SubjectClaim(value: subject), exp: ExpirationClaim(value: now.addingTimeInterval(expiresIn)),
            iss: issuer.map { IssuerClaim(value: $0) }, aud: audience.map { AudienceClaim(value: $0) })
        return try await signing.sign(claims, kid: JWKIdentifier(string: key.rawValue))
    }

    private func document() -> HTTPResponse {
        let (keys, failing) = served.withLock { state -> (Set<Key>, Bool) in
            state.requests += 1
            return (state.keys, state.failing)
        }
        if failing { return HTTPResponse(status: 503, body: Array("down".utf8)) }
        let entries = Key.allCases.filter(keys.contains).compactMap { jwks[$0] }
        return .json(bytes: Array(#"{"keys":[\#(entries.joined(separator: ","))]}"#.utf8))
    }

    private static func rsaJWK(_ key: JWTKit.Insecure.RSA.PublicKey, kid: String) throws -> String {
        let (modulus, exponent) = try key.getKeyPrimitives()
        return
            #"{"kty":"RSA","kid":"\#(kid)","alg":"RS256","use":"sig","n":"\#(base64URL(modulus))","e":"\#(base64URL(exponent))"}"#
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// `hs256(key:)`: a token whose header says HS256 (with `kid`), MAC'd with `key` as the
    /// secret: the algorithm-confusion attack with the provider's public key.
    static func hs256Token(header: String, payload: String, key: [UInt8]) -> String {
        let signingInput = base64URL(Data(header.utf8)) + "." + base64URL(Data(payload.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: key))
        return signingInput + "." + base64URL(Data(mac))
    }

    private static func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
