# Shared helpers for vibe_ft's scripts. Source it; do not run it.
# shellcheck shell=bash

PG_USER=${VIBE_FT_PG_USER:-vibeft}
PG_BIN=/usr/lib/postgresql/15/bin
export PATH="$PG_BIN:$HOME/.cargo/bin:$PATH"
# The server's binaries (initdb, pg_ctl, postgres): Debian's 15 unless a test
# of another version points elsewhere. Clients (psql, pg_regress) are 15's.
PG_SERVER_BIN=${PG_SERVER_BIN:-$PG_BIN}

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_pg() { runuser -u "$PG_USER" -- "$@"; }

# cluster_start DIR [extra postgresql.conf lines...]
# A throwaway cluster owned by $PG_USER: no TCP listener, socket in DIR/sock,
# vibe_ft and pg_cron preloaded (pass PRELOAD=... to change).
cluster_start() {
    local dir=$1; shift
    local preload=${PRELOAD-vibe_ft,pg_cron}
    local port=${PGPORT_FOR_TESTS:-5432}
    mkdir -p "$dir"
    chown "$PG_USER" "$dir"
    as_pg "$PG_SERVER_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    as_pg mkdir -p "$dir/sock"
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir/sock'"
        echo "port = $port"
        echo "shared_preload_libraries = '$preload'"
        echo "cron.database_name = 'postgres'"
        echo "cron.host = '$dir/sock'"
        echo "fsync = off"
        echo "log_min_messages = warning"
        for line in "$@"; do echo "$line"; done
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    # Provider keys in our environment reach the server only when asked
    # (KEEP_PROVIDER_KEYS=1: the demo against a real provider).
    local scrub=(env -u OPENAI_API_KEY -u AZURE_OPENAI_API_KEY -u TOGETHER_API_KEY)
    [ -z "${KEEP_PROVIDER_KEYS:-}" ] || scrub=(env)
    as_pg "${scrub[@]}" "$PG_SERVER_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

cluster_stop() {
    local dir=$1 mode=${2:-fast}
    [ -d "$dir/data" ] && as_pg "$PG_SERVER_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null 2>&1 || true
}

# psql against a cluster started by cluster_start: cluster_psql DIR [args...]
cluster_psql() {
    local dir=$1; shift
    as_pg psql -X -v ON_ERROR_STOP=1 -h "$dir/sock" -p "${PGPORT_FOR_TESTS:-5432}" -U postgres "$@"
}

# private_pg_tree DIR: a copy of this machine's PostgreSQL 15 (binaries,
# libraries, share files, server headers) in DIR, owned by $PG_USER, and a
# PGRX_HOME in DIR/pgrx pointing at it. `cargo pgrx test` installs the build it
# tests (with the test functions) into the PostgreSQL it runs: into this copy,
# never into the system's, whose vibe_ft.so running clusters may have mapped.
private_pg_tree() {
    local dir=$1
    mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/usr/include/postgresql" "$dir/pgrx"
    cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
    cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
    cp -a /usr/include/postgresql/15 "$dir/usr/include/postgresql/"
    # Only vibe_ft's own files come from the build: not those the package installed.
    rm -f "$dir"/usr/lib/postgresql/15/lib/vibe_ft.so "$dir"/usr/share/postgresql/15/extension/vibe_ft*
    chown -R "$PG_USER" "$dir"
    PGRX_HOME="$dir/pgrx" cargo pgrx init --pg15 "$dir/usr/lib/postgresql/15/bin/pg_config" >/dev/null
}
