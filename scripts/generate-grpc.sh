#!/usr/bin/env bash
# Regenerates the Swift code for the .proto files under proto/ into Sources/Actors/GRPC/Generated.
#
# The generated files are committed: neither `swift build` nor CI runs this script, because the
# protoc plugins take minutes to build. Run it after changing a .proto file, then commit the result.
#
#   scripts/generate-grpc.sh
#
# Needs protoc (Debian: protobuf-compiler, installed when missing and run as root). Builds
# protoc-gen-swift (apple/swift-protobuf) and protoc-gen-grpc-swift-2 (grpc/grpc-swift-protobuf)
# once, in .build-codegen (gitignored), at the versions pinned below, which match Package.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

SWIFT_PROTOBUF_VERSION=1.39.0
GRPC_SWIFT_PROTOBUF_VERSION=2.4.1
OUT=Sources/Actors/GRPC/Generated
CODEGEN=.build-codegen

if ! command -v protoc >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get install -y --no-install-recommends protobuf-compiler >/dev/null || {
            apt-get update >/dev/null && apt-get install -y --no-install-recommends protobuf-compiler >/dev/null
        }
    else
        echo "protoc not found: install protobuf-compiler" >&2
        exit 1
    fi
fi

# A throwaway package whose only job is to build the two plugins at the pinned versions.
mkdir -p "$CODEGEN"
cat > "$CODEGEN/Package.swift.new" <<PACKAGE
// swift-tools-version: 6.1
// Written by scripts/generate-grpc.sh: builds the protoc plugins; never part of the service build.
import PackageDescription

let package = Package(
    name: "codegen",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "$SWIFT_PROTOBUF_VERSION"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "$GRPC_SWIFT_PROTOBUF_VERSION"),
    ],
    targets: []
)
PACKAGE
# Rewritten only when it changed, so a second run does not rebuild the plugins.
cmp -s "$CODEGEN/Package.swift.new" "$CODEGEN/Package.swift" || mv "$CODEGEN/Package.swift.new" "$CODEGEN/Package.swift"
rm -f "$CODEGEN/Package.swift.new"
(cd "$CODEGEN" && swift build --product protoc-gen-swift && swift build --product protoc-gen-grpc-swift-2) \
    2>&1 | { grep -vE "^\[[0-9]+/[0-9]+\] " || true; }
PLUGINS="$(cd "$CODEGEN" && swift build --show-bin-path)"

# UseAccessLevelOnImports: the package builds with InternalImportsByDefault, so the generated
# public types need `public import` of the modules they expose.
# google/protobuf/*.proto (Timestamp) come with protoc's include directory.
PROTOS=(
    chat/v1/participants.proto
    chat/v1/chat.proto
    grpc/health/v1/health.proto
)
rm -rf "$OUT"
mkdir -p "$OUT"
protoc \
    --proto_path=proto \
    --plugin=protoc-gen-swift="$PLUGINS/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift="$PLUGINS/protoc-gen-grpc-swift-2" \
    --swift_out="$OUT" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=PathToUnderscores \
    --swift_opt=UseAccessLevelOnImports=true \
    --grpc-swift_out="$OUT" \
    --grpc-swift_opt=Visibility=Public \
    --grpc-swift_opt=FileNaming=PathToUnderscores \
    --grpc-swift_opt=UseAccessLevelOnImports=true \
    --grpc-swift_opt=Client=true \
    --grpc-swift_opt=Server=true \
    "${PROTOS[@]}"
echo "generated into $OUT:"
ls "$OUT"
