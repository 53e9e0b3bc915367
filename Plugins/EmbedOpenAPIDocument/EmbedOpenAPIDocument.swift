import Foundation
import PackagePlugin

/// Compiles `docs/openapi.yaml` into the target it is applied to as `OpenAPIDocument.text`, so
/// `GET /openapi.yaml` serves the file's exact text and nothing has to ship beside the binary.
/// The document stays one file, in docs/, where people read and edit it.
@main
struct EmbedOpenAPIDocument: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let input = context.package.directoryURL.appending(path: "docs/openapi.yaml")
        let output = context.pluginWorkDirectoryURL.appending(path: "OpenAPIDocument.swift")
        return [
            .buildCommand(
                displayName: "Embedding docs/openapi.yaml",
                executable: try context.tool(named: "EmbedText").url,
                arguments: [input.path(percentEncoded: false), output.path(percentEncoded: false), "OpenAPIDocument"],
                inputFiles: [input],
                outputFiles: [output])
        ]
    }
}
