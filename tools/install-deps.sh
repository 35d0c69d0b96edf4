#!/bin/sh
# The Debian packages katrace needs, by purpose:
#   install-deps.sh --check build   say which build packages are missing (any user)
#   install-deps.sh [all]           install, as root, what the build, the tests
#                                   (the kernel matrix too), the demo and the
#                                   benchmarks need
# Idempotent: it only asks apt for what is missing.
set -eu

BUILD_PKGS="clang llvm make gcc libbpf-dev libelf-dev zlib1g-dev bpftool pkg-config"
RUN_PKGS="libclang-rt-14-dev nodejs haproxy nginx-light curl python3 iproute2 wrk procps openssl
          util-linux"
# the tests' HTTPS server whose TLS library cannot be probed (Go's crypto/tls)
TEST_PKGS="golang-go"
# tools/deploy checks: promtool (in prometheus); the package test: man, systemd-analyze
DEPLOY_PKGS="prometheus man-db systemd"
# the HTML report's test and make screenshot: headless Chromium, a font
REPORT_PKGS="chromium fonts-dejavu-core"
# tools/vm: the kernel matrix (Debian kernels booted under qemu, virtiofs)
VM_PKGS="qemu-system-x86 qemu-system-common busybox-static cpio kmod xz-utils"

missing_of() {
	missing=""
	for p in $1; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	echo "$missing"
}

if [ "${1:-}" = --check ]; then
	missing=$(missing_of "$BUILD_PKGS")
	[ -z "$missing" ] && exit 0
	echo "katrace: missing build packages:$missing (apt-get install$missing, or: sudo make deps)" >&2
	exit 1
fi

missing=$(missing_of "$BUILD_PKGS $RUN_PKGS $TEST_PKGS $DEPLOY_PKGS $REPORT_PKGS $VM_PKGS")
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
for svc in nginx haproxy prometheus; do
	systemctl stop "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null || true
done
