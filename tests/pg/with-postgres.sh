#!/usr/bin/env bash
# tests/pg/with-postgres.sh COMMAND [ARG...]
#
# Starts a throwaway PostgreSQL server (tests/pg/postgres.sh) in a fresh temporary directory, runs
# COMMAND with TWOFA_PG_URL set to its database's URL, then stops the server and removes the
# directory, whether COMMAND passed, failed or was interrupted. Exits with COMMAND's status.
set -euo pipefail

[ $# -gt 0 ] || {
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/twofa-pg.XXXXXX")

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	"$here/postgres.sh" stop "$dir" || { [ "$status" != 0 ] || status=1; }
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

: >"$dir/.twofa-postgres" # so that stop removes the directory even if start fails early
TWOFA_PG_URL=$("$here/postgres.sh" start "$dir")
export TWOFA_PG_URL
echo "with-postgres: $TWOFA_PG_URL (in $dir)" >&2
# In the background (keeping stdin), so that a signal to this script is handled at once: it is
# passed on to COMMAND, which is waited for before the server stops.
"$@" <&0 &
child=$!
trap 'kill -INT "$child" 2>/dev/null; wait "$child"; exit 130' INT
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM
wait "$child"
