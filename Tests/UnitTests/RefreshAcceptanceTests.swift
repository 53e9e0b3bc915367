import Foundation
import Testing

@testable import Actors

/// What another instance's result in Redis must be to answer a refresh (cross-instance single
/// flight, docs/COORDINATION-L1.md): the whole table of baseline × what was found on taking the lock.
@Suite("RefreshAcceptance")
struct RefreshAcceptanceTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static let chat = ChatID(validating: "chat-1")!

    static func entry(secondsBeforeNow: Double) -> ParticipantsEntry {
        ParticipantsEntry(
            chatID: chat, participants: [], version: 1, fetchedAt: now.addingTimeInterval(-secondsBeforeNow))
    }

    /// The caller replaces an entry fetched 60 s ago.
    static let replacedAt = now.addingTimeInterval(-60)

    enum Found: String, CaseIterable, CustomTestStringConvertible {
        case nothing, marker, olderEntry, sameEntry, newerEntry, newerEntryAndMarker, newerButUnusable
        case fetchedThisMillisecond, fetchedNextMillisecond
        var testDescription: String { rawValue }

        var entry: ParticipantsEntry? {
            switch self {
            case .nothing, .marker: nil
            case .olderEntry: RefreshAcceptanceTests.entry(secondsBeforeNow: 120)
            case .sameEntry: RefreshAcceptanceTests.entry(secondsBeforeNow: 60)
            case .newerEntry, .newerEntryAndMarker, .newerButUnusable: RefreshAcceptanceTests.entry(secondsBeforeNow: 1)
            case .fetchedThisMillisecond: RefreshAcceptanceTests.entry(secondsBeforeNow: 0)
            case .fetchedNextMillisecond: RefreshAcceptanceTests.entry(secondsBeforeNow: -0.001)
            }
        }
        var usable: Bool { self != .newerButUnusable }
        var notFound: Bool { self == .marker || self == .newerEntryAndMarker }
    }

    static let baselines: [RefreshBaseline] = [.nothing, .entry(fetchedAt: replacedAt), .callStart]

    static func expected(_ baseline: RefreshBaseline, _ found: Found) -> RefreshAcceptance.OnTakingLock {
        let adopt = found.entry.map(RefreshAcceptance.OnTakingLock.adoptEntry) ?? .fetch
        switch (baseline, found) {
        case (_, .nothing), (_, .newerButUnusable): return .fetch
        // A marker carries no time: it answers a read, never the operator's refresh.
        case (.callStart, .marker): return .fetch
        case (_, .marker): return .adoptNotFound
        case (.nothing, _): return adopt
        case (.entry, .olderEntry), (.entry, .sameEntry): return .fetch
        case (.entry, _): return adopt
        // Only what was fetched after the call began. The call's own millisecond does not count
        // here: no holder vouches for the entry, which may be from just before the call.
        case (.callStart, .fetchedNextMillisecond): return adopt
        case (.callStart, _): return .fetch
        }
    }

    /// While a holder had the lock, an entry of the call's own millisecond is its result.
    @Test func aWaiterTakesAnEntryOfTheCallsOwnMillisecond() {
        let acceptance = RefreshAcceptance(.callStart, now: Self.now)
        #expect(acceptance.accepts(Self.entry(secondsBeforeNow: 0), usable: true))
        #expect(!acceptance.accepts(Self.entry(secondsBeforeNow: 0.002), usable: true))
        #expect(!acceptance.accepts(Self.entry(secondsBeforeNow: 0), usable: false))
    }

    @Test("every baseline against everything found on taking the lock", arguments: baselines, Found.allCases)
    func onTakingLock(baseline: RefreshBaseline, found: Found) {
        let acceptance = RefreshAcceptance(baseline, now: Self.now)
        #expect(
            acceptance.onTakingLock(entry: found.entry, usable: found.usable, notFound: found.notFound)
                == Self.expected(baseline, found))
    }
}
