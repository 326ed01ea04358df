#!/usr/bin/env sh
# Debian packages the Makefile needs, installed when missing.
#
#   system-packages.sh test     what `make test` needs: a real OpenSSH server and
#                               client (SSH tests) and Chromium (the browser test)
#   system-packages.sh venv     python3-venv, when the system's python3 cannot
#                               create a virtual environment (`make demo` too)
#
# Does nothing when all are there. Otherwise installs the missing ones with
# apt-get when running as root or with passwordless sudo, and else stops with
# one line naming the exact command to run.
set -eu

what=${1:-test}
missing=""
need() {  # need PACKAGE FILE...: PACKAGE is missing when one of its files is
    pkg=$1; shift
    for f in "$@"; do
        if [ ! -x "$f" ]; then missing="$missing $pkg"; return; fi
    done
}
case "$what" in
    test)
        need openssh-server /usr/sbin/sshd
        need openssh-client /usr/bin/ssh /usr/bin/ssh-keygen
        need chromium /usr/bin/chromium ;;
    venv)
        python=${PYTHON:-python3}
        if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
            if [ "$(command -v "$python")" != "/usr/bin/$python" ]; then
                echo "$python ($(command -v "$python")) cannot create virtual environments: install its venv module, or run make with PYTHON=/usr/bin/python3" >&2
                exit 1
            fi
            missing=" python3-venv"
        fi ;;
    *)
        echo "usage: $0 test|venv" >&2; exit 2 ;;
esac
[ -z "$missing" ] && exit 0

command="apt-get install -y --no-install-recommends$missing"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "make $what needs$missing (Debian package names) and this machine has no apt-get: install them, then run make again" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
else
    echo "make needs$missing: run 'sudo apt-get update && sudo $command', then make again" >&2
    exit 1
fi
echo "make: installing the missing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086  # word splitting of $command is intended
$sudo $command -qq >/dev/null
