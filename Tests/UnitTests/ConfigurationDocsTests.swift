import Foundation
import Testing

@testable import ChatService

/// The README's configuration table is the operators' reference: it must list exactly the
/// variables the service reads, with the same defaults.
@Suite("Configuration docs")
struct ConfigurationDocsTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func readmeTable() throws -> [(name: String, defaultValue: String?)] {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let begin = readme.range(of: "<!-- configuration-table:begin -->"),
            let end = readme.range(of: "<!-- configuration-table:end -->")
        else { return [] }
        return readme[begin.upperBound..<end.lowerBound]
            .split(separator: "\n")
            .filter { $0.hasPrefix("| `") }
            .map { row in
                let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                let name = cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
                let defaultValue =
                    cells[1] == "none" ? nil : cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
                return (name, defaultValue)
            }
    }

    @Test func readmeListsExactlyTheVariablesTheServiceReads() throws {
        let table = try Self.readmeTable()
        #expect(table.map(\.name) == EnvironmentVariable.all.map(\.name))
        for (row, variable) in zip(table, EnvironmentVariable.all) {
            #expect(row.defaultValue == variable.defaultValue, "default of \(variable.name)")
        }
    }

    @Test func helpMentionsEveryVariable() {
        for variable in EnvironmentVariable.all {
            #expect(EnvironmentHelp.text.contains(variable.name))
        }
    }
}
