#!/bin/sh
# Install, idempotently, every Debian package katrace's build, tests, demo and
# benchmarks need. Safe to run again: it only asks apt for what is missing.
set -eu

PKGS="clang llvm make gcc libbpf-dev libelf-dev zlib1g-dev bpftool pkg-config
      libclang-rt-14-dev nodejs haproxy nginx-light curl python3 iproute2 wrk procps
      util-linux"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts the daemons it installs; the tests start their own instances.
for svc in nginx haproxy; do
	systemctl stop "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null || true
done
