#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12 with only Python 3.11, as issue 19 asks:
# a debootstrap'ed root with python3, python3-venv and git (nothing else), a clone of this
# repository's HEAD in /root/tether, then `./dev demo` and `./dev test` verbatim in a chroot.
#   sudo tools/fresh_check.sh                              ./dev test installs the Debian packages
#   sudo TETHER_SYSTEM_PACKAGES=print tools/fresh_check.sh  it only prints the command: tests skip
# Needs root (debootstrap, chroot, mounts) and deb.debian.org plus PyPI. Everything it makes
# is under $TETHER_FRESH_DIR (default /var/tmp/tether-fresh): base/ is the cached Debian root
# (delete it to rebuild), run-<mode>/ a throwaway copy of it per check, <mode>-*.log the output.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${TETHER_FRESH_DIR:-/var/tmp/tether-fresh}
mirror=${TETHER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "fresh_check: needs root (debootstrap, chroot)" >&2; exit 2; }
mkdir -p "$dir" && dir=$(cd "$dir" && pwd -P)  # absolute: cleanup compares /proc/*/root with it

if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The fresh machine, built once: minbase plus exactly what the README assumes.
if [ ! -f "$dir/base/.tether-fresh-base" ]; then
  rm -rf "$dir/base.tmp"
  timeout 1200 debootstrap --variant=minbase --include=python3,python3-venv,git,ca-certificates \
    bookworm "$dir/base.tmp" "$mirror"
  touch "$dir/base.tmp/.tether-fresh-base"
  rm -rf "$dir/base" && mv "$dir/base.tmp" "$dir/base"
fi

# Each check starts from the pristine base: ./dev test installs system packages into run/.
mode=${TETHER_SYSTEM_PACKAGES:-install}
root=$dir/run-$mode
cleanup() {
  # Whatever still runs inside (a PostgreSQL a killed test left) holds the mounts: end those
  # processes, and only those, found by their root directory.
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  sleep 1
  for m in sys proc dev; do
    if mountpoint -q "$root/$m"; then umount -R "$root/$m" || umount -lR "$root/$m"; fi
  done
  # the root's own bind mount, and what `ip netns` mounted inside it (run/netns)
  if mountpoint -q "$root"; then umount -R "$root" || umount -lR "$root"; fi
}
trap cleanup EXIT
cleanup
rm -rf --one-file-system "$root"
cp -a "$dir/base" "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"  # pip and apt-get inside need DNS
# What Debian's installer writes and debootstrap does not: localhost resolves.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# Where the network intercepts TLS, the host trusts its CA through PIP_CERT: the fresh machine
# trusts the same bundle (a property of the network, not of the machine), nothing else of pip's.
cert_env=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  cp "$PIP_CERT" "$root/etc/ssl/certs/network-ca-bundle.crt"
  cert_env=(PIP_CERT=/etc/ssl/certs/network-ca-bundle.crt)
fi

# The committed HEAD, as a clone would give it (uncommitted changes are not checked).
head=$(git -C "$repo" rev-parse HEAD)
[ -z "$(git -C "$repo" status --porcelain)" ] || echo "fresh_check: uncommitted changes are not part of the check" >&2
git clone -q --no-checkout "$repo" "$root/root/tether"
git -C "$root/root/tether" checkout -q "$head"

# A machine's / is a mount point, a plain directory is not: `ip netns exec` and `ip -n` begin
# with `mount --make-rslave /`, which fails (EINVAL) in a chroot into a directory.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"  # /dev/shm for PostgreSQL, /dev/null, /dev/urandom
mount --make-rslave "$root/dev"  # so unmounting it later leaves the host's /dev alone

# A login-like environment: nothing of the host's but PATH, a locale and the CA bundle above.
inside() {
  local limit=$1; shift
  timeout --kill-after=30 "$limit" chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${cert_env[@]}" \
    TETHER_SYSTEM_PACKAGES="$mode" bash -c "cd /root/tether && $*"
}
set +e
inside 600 ./dev demo >"$dir/$mode-demo.log" 2>&1; demo_rc=$?
inside 2400 ./dev test >"$dir/$mode-test.log" 2>&1; test_rc=$?
set -e

echo "fresh_check: Debian $(cat "$root/etc/debian_version"), $(chroot "$root" python3 --version), HEAD ${head:0:12}, system packages: $mode"
echo "./dev demo: exit $demo_rc (log $dir/$mode-demo.log)"
tail -n 12 "$dir/$mode-demo.log" | sed 's/^/  /'
echo "./dev test: exit $test_rc (log $dir/$mode-test.log)"
grep -E '^(system packages|FAILED|ERROR)' "$dir/$mode-test.log" | sed 's/^/  /' || true
echo "  skip reasons:"
# pytest -ra prints "SKIPPED [count] where: reason"; add the counts up per reason
grep -E '^SKIPPED' "$dir/$mode-test.log" | sed -E 's/^SKIPPED \[([0-9]+)\] [^ ]+: /\1\t/' \
  | awk -F'\t' '{n[$2] += $1} END {for (r in n) printf "    %5d  %s\n", n[r], r}' | sort -rn || true
tail -n 1 "$dir/$mode-test.log" | sed 's/^/  /'
[ "$demo_rc" = 0 ] && [ "$test_rc" = 0 ]
