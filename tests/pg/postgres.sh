#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, never a system service.
#
#   tests/pg/postgres.sh start DIR   initdb in DIR/data (superuser twofa, trust auth, UTF8), start
#                                    the server on 127.0.0.1 at a free port with its socket in DIR,
#                                    create the database twofa, write its URL to DIR/url and print it
#   tests/pg/postgres.sh stop DIR    stop that server (fast shutdown) and remove DIR
#
# It uses Debian's server binaries (/usr/lib/postgresql/*/bin, the newest major version; `make
# postgres-server` installs them). As root, the server runs as the `postgres` system user (or
# `nobody` if there is none) and DIR is handed to that user, so DIR's parent directories must be
# searchable by it (/tmp is). Otherwise it runs as the caller.
#
# Environment: TWOFA_PG_SERVER_OPTS replaces the default server options, which trade durability
# for speed (fsync, full_page_writes and synchronous_commit off): the data is thrown away anyway.
set -euo pipefail

MARKER=.twofa-postgres
DEFAULT_OPTS="-c fsync=off -c full_page_writes=off -c synchronous_commit=off"

die() {
	echo "postgres.sh: $*" >&2
	exit 1
}

# The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl.
pg_bin() {
	local bin
	bin=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' -printf '%h\n' 2>/dev/null |
		sort -V | tail -n 1)
	[ -n "$bin" ] && [ -x "$bin/pg_ctl" ] ||
		die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (run: make -f Makefile -f tests/pg/pg.mk postgres-server)"
	echo "$bin"
}

# The user the server runs as: the caller, or when that is root, postgres (else nobody).
server_user() {
	if [ "$(id -u)" != 0 ]; then
		id -un
	elif id postgres >/dev/null 2>&1; then
		echo postgres
	else
		echo nobody
	fi
}

# Runs a command as `user` (dropping root when we have it).
as_user() {
	local user=$1
	shift
	if [ "$(id -u)" != 0 ]; then
		"$@"
	elif command -v runuser >/dev/null; then
		runuser -u "$user" -- "$@"
	else
		setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
	fi
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
	local dir=$1 bin user port url attempt
	bin=$(pg_bin)
	user=$(server_user)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ ! -e "$dir/data" ] || die "$dir/data already exists"
	: >"$dir/$MARKER"
	if [ "$(id -u)" = 0 ]; then
		chown -R "$user:" "$dir"
		as_user "$user" test -w "$dir" ||
			die "$user cannot write $dir: choose a directory whose parents it can enter (e.g. under /tmp)"
	fi
	# --no-sync: the data is thrown away, so initdb need not wait for the disk.
	as_user "$user" "$bin/initdb" --pgdata="$dir/data" --username=twofa --auth=trust \
		--encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; die "initdb failed"; }
	# The port is free when picked but may be taken before the server binds it: try again then.
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		if as_user "$user" "$bin/pg_ctl" start --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
			--silent -o "-c listen_addresses=127.0.0.1 -p $port -k $dir ${TWOFA_PG_SERVER_OPTS-$DEFAULT_OPTS}"; then
			break
		fi
		if [ "$attempt" = 5 ] || ! grep -q "could not bind\|could not create any TCP/IP sockets" "$dir/server.log"; then
			cat "$dir/server.log" >&2
			die "the server did not start"
		fi
	done
	"$bin/pg_isready" --quiet --host=127.0.0.1 --port="$port" --timeout=30 || die "the server does not answer on port $port"
	"$bin/createdb" --host=127.0.0.1 --port="$port" --username=twofa twofa
	url="postgresql://twofa@127.0.0.1:$port/twofa"
	echo "$url" >"$dir/url"
	echo "$url"
}

stop() {
	local dir=$1 bin owner
	[ -d "$dir" ] || return 0
	# Only a directory that start made (the marker) is removed: a mistyped DIR must not be wiped.
	[ -e "$dir/$MARKER" ] || die "$dir was not made by postgres.sh start; not removing it"
	if [ -e "$dir/data/postmaster.pid" ]; then
		bin=$(pg_bin)
		owner=$(stat -c %U "$dir/data")
		as_user "$owner" "$bin/pg_ctl" stop --pgdata="$dir/data" --mode=fast --wait --silent ||
			as_user "$owner" "$bin/pg_ctl" stop --pgdata="$dir/data" --mode=immediate --wait --silent ||
			echo "postgres.sh: stopping the server in $dir failed" >&2
	fi
	rm -rf "$dir"
}

case "${1-} ${2-}" in
start\ ?*) start "$2" ;;
stop\ ?*) stop "$2" ;;
*)
	echo "usage: $0 start DIR | stop DIR" >&2
	exit 2
	;;
esac
