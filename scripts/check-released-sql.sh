#!/usr/bin/env bash
# A released version's install script must never change: later versions reach
# users through hand-written sql/vibe_ft--<from>--<to>.sql upgrade scripts, and
# the upgrade test installs the frozen sql/vibe_ft--<version>.sql of the release
# before. pgrx generates the install script from the code at build time, so this
# compares the generated script of the current version (see Cargo.toml) with the
# frozen copy, ignoring comments (they carry source line numbers).
#   scripts/check-released-sql.sh          compare (used by scripts/test.sh)
#   scripts/check-released-sql.sh FILE     compare FILE, a script generated elsewhere
#                                          (the one packaged for PostgreSQL 16-18)
#   scripts/check-released-sql.sh --freeze write the frozen copy for a new version
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
if [ -n "${1:-}" ] && [ "$1" != --freeze ]; then
    cp "$1" "$generated"
else
    cargo pgrx schema pg15 --release -o "$generated" >/dev/null 2>&1
fi
frozen=sql/vibe_ft--$version.sql
# Comments stripped, statements sorted: pgrx emits functions in no fixed order.
normalize() {
    sed -e 's|/\*[^*]*\*/||g' -e 's/--.*$//' -e 's/[[:space:]]*$//' "$1" | grep -v '^$' \
        | awk 'BEGIN { RS = ";\n" } { gsub(/\n/, " "); print }' | sort
}
if [ "${1:-}" = --freeze ]; then
    install -m 644 "$generated" "$frozen"   # not mktemp's 0600: the package copies it
    echo "froze $frozen"
    exit 0
fi
if [ ! -f "$frozen" ]; then
    echo "no $frozen: a new version; run scripts/check-released-sql.sh --freeze when releasing it" >&2
    exit 0
fi
if ! diff <(normalize "$frozen") <(normalize "$generated") >/dev/null; then
    echo "The install script of released version $version changed:" >&2
    diff <(normalize "$frozen") <(normalize "$generated") | head -40 >&2
    echo "Bump the version in Cargo.toml and write sql/vibe_ft--$version--<new>.sql instead." >&2
    exit 1
fi
echo "install script of $version${1:+ ($1)} matches the frozen $frozen"
