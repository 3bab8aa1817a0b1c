#!/usr/bin/env bash
# Installs the conformance tests' npm dependencies (the pinned official OpenAI
# SDK) into tests/conformance/node_modules, exactly as package-lock.json says.
# Runs `npm ci` only when node_modules is missing or older than the lock file,
# so it costs nothing when already installed. Needs only the npm registry
# (or npm's local cache).
set -euo pipefail
cd "$(dirname "$0")"

# npm writes this hidden lock file last, so it marks a complete install.
marker=node_modules/.package-lock.json

if [ -f "$marker" ] && [ -f node_modules/openai/package.json ] && [ -f node_modules/@anthropic-ai/sdk/package.json ] && [ ! package-lock.json -nt "$marker" ]; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "conformance/setup.sh: npm not found (run tools/setup.sh, or: make test)" >&2
    exit 1
fi

echo "conformance/setup.sh: npm ci in $(pwd)"
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
touch "$marker"
