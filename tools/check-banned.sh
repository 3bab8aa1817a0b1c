#!/usr/bin/env bash
# Flags what curl's checksrc bans in the product's C sources (tests and the
# mock are exempt): unbounded string functions, atoi-style parsing, raw
# malloc/free outside common/alloc.c, and PQexec (SQL must be parameterized).
set -u
cd "$(dirname "$0")/.."
dirs="common dataplane controlplane proto"
status=0
hits=$(grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)\(' $dirs --include='*.c' --include='*.h' |
       grep -vE '\b(snprintf|vsnprintf)\(' || true)
if [ -n "$hits" ]; then
    echo "banned functions:"; echo "$hits"; status=1
fi
hits=$(grep -rnE '(^|[^_a-z])(malloc|calloc|realloc|free)\(' $dirs --include='*.c' |
       grep -v '^common/alloc.c:' || true)
if [ -n "$hits" ]; then
    echo "raw allocation outside common/alloc.c (use sl_xmalloc/sl_free):"; echo "$hits"; status=1
fi
hits=$(grep -rn 'PQexec(' $dirs --include='*.c' || true)
if [ -n "$hits" ]; then
    echo "PQexec (use PQexecParams or prepared statements):"; echo "$hits"; status=1
fi
[ $status -eq 0 ] && echo "check-banned: clean"
exit $status
