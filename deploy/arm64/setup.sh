#!/usr/bin/env bash
# setup.sh: install what the Linux arm64 (aarch64) cross build of the agent
# and its tests under qemu need, on Debian 12 amd64.
#
#   deploy/arm64/setup.sh        (as root, or with sudo)
#
# The arm64 libraries are Debian's own arm64 packages, installed beside
# the amd64 ones (multiarch: "dpkg --add-architecture arm64"). Each -dev
# package here is "Multi-Arch: same": both architectures co-install, but
# only at the same version, so apt upgrades an installed amd64 copy (for
# example libsqlite3-dev after a security update) together with the arm64
# one. A held or foreign-version amd64 package stops the install; apt then
# names it.
#
# Idempotent: when arm64 is already an architecture of dpkg and every
# package is installed it does nothing (no "apt-get update").
set -euo pipefail

ARCH=arm64
# The build machine's: the cross compiler and the emulator the tests run
# under (qemu-user-static, if it is there instead, serves as well).
HOST_PACKAGES=(gcc-aarch64-linux-gnu cmake pkg-config)
if ! command -v qemu-aarch64 >/dev/null 2>&1 &&
	! command -v qemu-aarch64-static >/dev/null 2>&1; then
	HOST_PACKAGES+=(qemu-user)
fi
# The target's: libc6-dev is the arm64 C library the cross gcc compiles and
# links against (the same build as the runtime libc6:arm64).
TARGET_PACKAGES=(libc6-dev libnng-dev libsqlite3-dev libmsgpack-dev
	libjansson-dev libmbedtls-dev)

PACKAGES=("${HOST_PACKAGES[@]}")
for p in "${TARGET_PACKAGES[@]}"; do
	PACKAGES+=("$p:$ARCH")
done

# shellcheck source=deploy/apt.sh
. "$(dirname "$0")/../apt.sh"
add_arch=0
if ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
	add_arch=1
fi
apt_missing "${PACKAGES[@]}"
if [ $add_arch -eq 0 ] && [ ${#MISSING[@]} -eq 0 ]; then
	echo "arm64 setup: all ${#PACKAGES[@]} packages already installed"
	exit 0
fi
if [ $add_arch -eq 1 ]; then
	apt_sudo "arm64 setup" "${MISSING[@]}"
	echo "arm64 setup: adding the dpkg architecture $ARCH"
	"${SUDO[@]}" dpkg --add-architecture "$ARCH"
fi
apt_install "arm64 setup" "${MISSING[@]}"
