# shellcheck shell=bash
# apt.sh: sourced by deploy/install-deps.sh, deploy/arm64/setup.sh and
# deploy/windows/*.sh: which Debian packages are missing, and installing
# them as root or with sudo.

# apt_missing PKG...: sets the array MISSING to the packages of PKG...
# that are not installed. A name without ":ARCH" means the machine's own
# architecture (or "all"): with a foreign architecture added (the arm64
# cross build), dpkg lists a package once per architecture installed.
apt_missing() {
	local p want status native
	native=$(dpkg --print-architecture)
	MISSING=()
	for p in "$@"; do
		case $p in
		*:*) want=${p#*:} ;;
		*) want=$native ;;
		esac
		status=$(dpkg-query -W -f='${db:Status-Status} ${Architecture}\n' \
			"$p" 2>/dev/null || true)
		grep -qE "^installed ($want|all)\$" <<<"$status" ||
			MISSING+=("$p")
	done
}

# apt_sudo WHO PKG...: sets the array SUDO to what runs a command as root
# (nothing as root, else sudo), or exits 1 naming WHO and PKG...
apt_sudo() {
	local who=$1
	shift
	if [ "$(id -u)" -eq 0 ]; then
		SUDO=()
	elif command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "$who: error: missing packages: $*" >&2
		echo "$who: hint: run this script as root or install sudo" >&2
		exit 1
	fi
}

# apt_install WHO PKG...: apt-get update, then installs PKG... without
# recommended packages; WHO names the caller in messages.
apt_install() {
	local who=$1
	shift
	apt_sudo "$who" "$@"
	echo "$who: installing: $*"
	export DEBIAN_FRONTEND=noninteractive
	"${SUDO[@]}" apt-get update
	"${SUDO[@]}" apt-get install -y --no-install-recommends "$@"
}
