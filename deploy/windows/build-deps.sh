#!/usr/bin/env bash
# build-deps.sh: cross-build the agent's libraries for Windows x86-64
# (x86_64-w64-mingw32) from Debian's own source packages, as static
# libraries, into one prefix the agent's cross build links against.
#
#   deploy/windows/build-deps.sh [BUILD_DIR]     (default: build-win)
#
# Needs Debian 12. As root (or with sudo) it installs the cross toolchain
# and adds a deb-src entry when they are missing. Then it fetches with
# "apt-get source" and builds, in this order: sqlite3, mbedtls, nng (with
# TLS from that mbedtls), msgpack-c, jansson. (The agent reads its INI
# files with its own reader, proto/util/ini.c: Debian 12's libinih source
# package cannot be fetched from the archive.)
#
# BUILD_DIR/src/<package>/   the unpacked source packages
# BUILD_DIR/obj/<package>/   the build trees
# BUILD_DIR/prefix/          include/, lib/*.a, lib/pkgconfig/, lib/cmake/
#
# Re-runnable: a package whose stamp BUILD_DIR/prefix/.stamp-<package>
# exists is skipped; delete the stamp (or BUILD_DIR) to build it again.
# JOBS (default 2) bounds the parallel compile jobs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build-win}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
SRC=$BUILD/src
OBJ=$BUILD/obj
PREFIX=$BUILD/prefix
JOBS=${JOBS:-2}
HOST=x86_64-w64-mingw32
TOOLCHAIN=$HERE/mingw-w64-x86_64.cmake
mkdir -p "$SRC" "$OBJ" "$PREFIX"

log() { echo "build-deps: $*"; }

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	SUDO=(false)
fi
export DEBIAN_FRONTEND=noninteractive

# --- the cross toolchain --------------------------------------------------
# g++: msgpack-c's CMake project enables C++ though the C library needs none
PACKAGES=(gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 cmake make ninja-build pkg-config
	dpkg-dev xz-utils tcl)
# shellcheck source=deploy/apt.sh
. "$HERE/../apt.sh"
apt_missing "${PACKAGES[@]}"
if [ ${#MISSING[@]} -gt 0 ]; then
	apt_install build-deps "${MISSING[@]}"
fi

# --- deb-src: the same archive as the machine's deb entries ---------------
# Only entries for this release (its codename, -updates, -security) are
# copied, so third-party repositories stay out of it.
CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
have_debsrc() {
	grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/
}
if ! have_debsrc; then
	[ -n "$CODENAME" ] || { log "error: no VERSION_CODENAME in /etc/os-release" >&2; exit 1; }
	tmp=$(mktemp -d)
	# one-line format: "deb [opts] URI SUITE COMPONENTS..."
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		if [ -e "$f" ]; then cat "$f"; fi
	done | awk -v c="$CODENAME" '$1 == "deb" {
			for (i = 2; i <= NF; i++) if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; continue } else break
			if ($(i+1) ~ "^" c "(-updates|-security)?$") { $1 = "deb-src"; print }
	}' >"$tmp/list"
	# deb822 format: stanzas separated by blank lines
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk -v c="$CODENAME" '
			function flush() {
				if (n && deb && suite && on) { for (i = 1; i <= n; i++) print s[i]; print "" }
				n = 0; deb = 0; suite = 0; on = 1
			}
			BEGIN { on = 1 }
			/^[[:space:]]*$/ { flush(); next }
			/^#/ { next }
			/^Enabled:[[:space:]]*no/ { on = 0 }
			/^Types:/ { if ($0 ~ /[[:space:]]deb([[:space:]]|$)/) deb = 1; s[++n] = "Types: deb-src"; next }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i ~ "^" c "(-updates|-security)?$") suite = 1 }
			{ s[++n] = $0 }
			END { flush() }' "$f" >>"$tmp/sources"
	done
	if [ -s "$tmp/list" ]; then
		log "adding deb-src entries (one-line format)"
		"${SUDO[@]}" cp "$tmp/list" /etc/apt/sources.list.d/branchsync-deb-src.list
	fi
	if [ -s "$tmp/sources" ]; then
		log "adding deb-src entries (deb822 format)"
		"${SUDO[@]}" cp "$tmp/sources" /etc/apt/sources.list.d/branchsync-deb-src.sources
	fi
	rm -rf "$tmp"
	have_debsrc || { log "error: found no deb entry for $CODENAME to derive deb-src from" >&2; exit 1; }
fi
if [ -z "$(apt-cache showsrc sqlite3 2>/dev/null)" ]; then
	"${SUDO[@]}" apt-get update
fi

# --- helpers --------------------------------------------------------------
declare -A TIMES
FAILED=()

# fetch PKG: unpack Debian's source package PKG (with Debian's patches
# applied) into $SRC/PKG/<dir>; sets $S to that directory.
fetch() {
	local pkg=$1 t0=$SECONDS
	if ! [ -e "$SRC/$pkg/.fetched" ]; then
		rm -rf "${SRC:?}/$pkg"
		mkdir -p "$SRC/$pkg"
		log "$pkg: apt-get source"
		(cd "$SRC/$pkg" && apt-get source -q "$pkg" >apt-get-source.log 2>&1) || {
			tail -20 "$SRC/$pkg/apt-get-source.log" >&2
			return 1
		}
		touch "$SRC/$pkg/.fetched"
	fi
	S=$(find "$SRC/$pkg" -mindepth 1 -maxdepth 1 -type d | head -1)
	TIMES[$pkg]="fetch $((SECONDS - t0))s"
}

cmake_build() { # cmake_build PKG SRCDIR [cmake options...]
	local pkg=$1 dir=$2
	shift 2
	rm -rf "${OBJ:?}/$pkg"
	cmake -S "$dir" -B "$OBJ/$pkg" -G Ninja \
		-DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DBS_WIN_PREFIX="$PREFIX" \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
		-DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF "$@"
	cmake --build "$OBJ/$pkg" -j "$JOBS"
	cmake --install "$OBJ/$pkg"
}

# build PKG FUNCTION: fetch and build unless stamped; times both.
build() {
	local pkg=$1 fn=$2 t0
	if [ -e "$PREFIX/.stamp-$pkg" ]; then
		log "$pkg: already built ($(cat "$PREFIX/.stamp-$pkg")), skipping"
		TIMES[$pkg]="skipped (built before)"
		return
	fi
	if ! fetch "$pkg"; then
		log "$pkg: apt-get source FAILED, see $SRC/$pkg/apt-get-source.log" >&2
		TIMES[$pkg]="apt-get source FAILED"
		FAILED+=("$pkg")
		return
	fi
	t0=$SECONDS
	log "$pkg: building $(basename "$S") (log: $OBJ/$pkg.log)"
	# a subshell with its own set -e: a failing step stops the build
	set +e
	(set -e; "$fn") >"$OBJ/$pkg.log" 2>&1
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		tail -30 "$OBJ/$pkg.log" >&2
		log "$pkg: build FAILED after $((SECONDS - t0))s" >&2
		TIMES[$pkg]="${TIMES[$pkg]}, build FAILED"
		FAILED+=("$pkg")
		return
	fi
	TIMES[$pkg]="${TIMES[$pkg]}, build $((SECONDS - t0))s"
	basename "$S" >"$PREFIX/.stamp-$pkg"
	log "$pkg: ${TIMES[$pkg]}"
}

# --- the libraries --------------------------------------------------------
# sqlite3: Debian's tree is the full source, not the amalgamation; its
# configure builds the generators (lemon, mkkeywordhash) with the build
# machine's cc and makes sqlite3.c with tclsh. CFLAGS follow debian/rules
# where they matter for the agent (thread safety, URIs).
# config_TARGET_EXEEXT=.exe is what makes configure pick SQLITE_OS_WIN
# (else it defines SQLITE_OS_UNIX=1); BEXE= names the build machine's
# generators without .exe, and CROSS_BUILDING=yes makes Debian's
# 30-cross.patch build lemon with BUILD_CC.
build_sqlite3() {
	mkdir -p "$OBJ/sqlite3"
	cd "$OBJ/sqlite3"
	"$S/configure" --host=$HOST --build="$(gcc -dumpmachine)" \
		--prefix="$PREFIX" --disable-shared --enable-static \
		--disable-tcl --disable-readline --enable-threadsafe \
		--enable-json --enable-fts5 BUILD_CC=gcc config_TARGET_EXEEXT=.exe \
		CFLAGS="-O2 -fno-strict-aliasing -DSQLITE_THREADSAFE=1 \
			-DSQLITE_USE_URI=1 -DSQLITE_ENABLE_COLUMN_METADATA \
			-DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_MAX_SCHEMA_RETRY=25 \
			-DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_SESSION"
	make -j "$JOBS" BEXE= CROSS_BUILDING=yes libsqlite3.la sqlite3.pc
	make BEXE= CROSS_BUILDING=yes lib_install
	install -d "$PREFIX/include" "$PREFIX/lib/pkgconfig"
	install -m 0644 sqlite3.h "$S/src/sqlite3ext.h" "$PREFIX/include"
	install -m 0644 sqlite3.pc "$PREFIX/lib/pkgconfig"
}

# mbedtls: libmbedcrypto, libmbedx509, libmbedtls; nng's TLS engine.
build_mbedtls() {
	cmake_build mbedtls "$S" -DENABLE_TESTING=OFF -DENABLE_PROGRAMS=OFF \
		-DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
		-DMBEDTLS_FATAL_WARNINGS=OFF
}

# nng: TLS from the mbedtls above (nng's FindmbedTLS looks in
# MBEDTLS_ROOT_DIR). A static nng defines NNG_STATIC_LIB for its users
# through nng::nng.
build_nng() {
	cmake_build nng "$S" -DNNG_ENABLE_TLS=ON -DNNG_TLS_ENGINE=mbed \
		-DMBEDTLS_ROOT_DIR="$PREFIX" -DNNG_TESTS=OFF -DNNG_TOOLS=OFF \
		-DNNG_ENABLE_NNGCAT=OFF
}

build_msgpack_c() {
	cmake_build msgpack-c "$S" -DMSGPACK_BUILD_TESTS=OFF \
		-DMSGPACK_BUILD_EXAMPLES=OFF -DMSGPACK_ENABLE_SHARED=OFF \
		-DMSGPACK_ENABLE_STATIC=ON
}

# jansson: its CMake build writes jansson.pc too.
build_jansson() {
	cmake_build jansson "$S" -DJANSSON_BUILD_SHARED_LIBS=OFF \
		-DJANSSON_BUILD_DOCS=OFF -DJANSSON_WITHOUT_TESTS=ON \
		-DJANSSON_EXAMPLES=OFF
}

build sqlite3 build_sqlite3
build mbedtls build_mbedtls
build nng build_nng
build msgpack-c build_msgpack_c
build jansson build_jansson

log "done; per library:"
for p in sqlite3 mbedtls nng msgpack-c jansson; do
	[ -n "${TIMES[$p]:-}" ] && echo "  $p: ${TIMES[$p]}"
done
log "prefix: $PREFIX"
if [ ${#FAILED[@]} -gt 0 ]; then
	log "failed: ${FAILED[*]}" >&2
	exit 1
fi
