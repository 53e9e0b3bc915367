import Foundation

/// The environment section of `chat-service --help`, generated from ``EnvironmentVariable/all``.
public enum EnvironmentHelp {
    public static let text: String = {
        var lines = ["ENVIRONMENT (durations take 500ms, 30s, 15m, 1h, 1d or plain seconds):"]
        let width = EnvironmentVariable.all.map(\.name.count).max() ?? 0
        for variable in EnvironmentVariable.all {
            let padded = variable.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let defaultText = variable.defaultValue.map { " (default \($0))" } ?? " (default: none)"
            lines.append("  \(padded)  \(variable.meaning)\(defaultText)")
        }
        lines.append("")
        lines.append("A bad value stops start-up with exit code 78 and a line naming the variable.")
        return lines.joined(separator: "\n")
    }()
}
