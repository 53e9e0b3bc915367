#!/usr/bin/env bash
# Installs the Debian packages chat-service needs to build, test and run, when they are missing.
# Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail

# libssl-dev: HTTPS upstream; openssl and socat: the HTTPS tests make certificates and put a
# TLS terminator in front of the stub upstream; iproute2: network namespace tests.
packages=(libhiredis-dev libevent-dev libhttp-parser-dev liblz4-dev libssl-dev libsqlite3-dev postgresql redis-server redis-tools redis-sentinel pkg-config curl openssl socat iproute2 "$@")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "note: swift is at /opt/swift/usr/bin; add it to PATH" >&2
    else
        echo "error: Swift 6.1 or later is required (https://www.swift.org/install/)" >&2
        exit 1
    fi
fi
