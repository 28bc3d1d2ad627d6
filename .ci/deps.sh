# Sourced by .ci/run and docs/quickstart.sh: install what rvmfs needs to
# build and test on Debian 12 (as root, or with sudo).
RVMFS_DEPS=(
    gcc libc6-dev meson ninja-build pkg-config   # build
    libfuse3-dev fuse3 liburcu-dev               # the rvmfs daemon
    libcmocka-dev attr python3 util-linux        # tests (setfattr, flock)
    groff man-db                                 # man page checks
)

rvmfs_install_deps() {
    local missing=() p sudo=
    for p in "${RVMFS_DEPS[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "rvmfs: need root to install ${missing[*]}; run this as root" >&2
            return 1
        }
        sudo=sudo
    fi
    echo "installing: ${missing[*]}"
    $sudo apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
            "${missing[@]}"
}
