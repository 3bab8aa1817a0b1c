#!/usr/bin/env bash
# docs/providers.md embeds the provider table as `sluice-gateway
# --list-providers` prints it; this keeps the two equal (ctest lint.providers_doc).
# With --write, rewrites the block in the document instead.
set -euo pipefail
gw=$1
doc="$(dirname "$0")/../docs/providers.md"
start='<!-- providers:start (sluice-gateway --list-providers; tools/check-providers-doc.sh --write) -->'
end='<!-- providers:end -->'
table=$("$gw" --list-providers)
current=$(awk -v s="$start" -v e="$end" '$0==s{on=1;next} $0==e{on=0} on' "$doc")
if [ "${2:-}" = "--write" ]; then
    awk -v s="$start" -v e="$end" -v t="$table" '$0==s{print; print t; skip=1; next} $0==e{skip=0} !skip' "$doc" > "$doc.tmp"
    mv "$doc.tmp" "$doc"
    exit 0
fi
if [ "$table" != "$current" ]; then
    echo "docs/providers.md is out of date with the provider table; run:"
    echo "  tools/check-providers-doc.sh $gw --write"
    diff <(echo "$current") <(echo "$table") || true
    exit 1
fi
echo "check-providers-doc: up to date"
