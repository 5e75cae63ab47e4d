#!/usr/bin/env bash
# The Debian packages the tests (or the demo) need beyond Python, in one place: ./dev and
# .ci/run both call this, so the list cannot drift between them.
#   tools/system_packages.sh test              what the test suite needs
#   tools/system_packages.sh demo [ARGS...]   what `./dev demo ARGS` needs (pgbouncer for --pgbouncer)
# Installs what is missing when run as root with apt-get; otherwise (or with
# TETHER_SYSTEM_PACKAGES=print) prints the exact command and installs nothing. Never fails the
# caller: without a package the tests that need it skip, naming the same command.
set -euo pipefail
cd "$(dirname "$0")/.."

py=${PYTHON:-python3}
# mariadbd and pgbouncer live in /usr/sbin, which a user's PATH often lacks
PATH=$PATH:/usr/sbin:/sbin
# A library counts as present when the dynamic loader loads it, as the drivers will.
loads() { "$py" -c "import ctypes, sys; ctypes.CDLL(sys.argv[1])" "$1" 2>/dev/null; }

packages=()
case "${1:-test}" in
  test)
    # libltdl7: mssql-python's bundled ODBC driver (libmsodbcsql, libodbcinst) links libltdl.so.7
    loads libltdl.so.7 || packages+=(libltdl7)
    # unixodbc: pyodbc's libodbc.so.2, the driver manager for both ODBC drivers
    loads libodbc.so.2 || packages+=(unixodbc)
    # tdsodbc: FreeTDS's ODBC driver (pyodbc through FreeTDS to the TDS test server)
    ls /usr/lib/*/odbc/libtdsodbc.so >/dev/null 2>&1 || packages+=(tdsodbc)
    # mariadb-*-core: mariadbd, mariadb-install-db, mariadb (embedded MariaDB for the MySQL tests)
    command -v mariadbd >/dev/null || packages+=(mariadb-server-core mariadb-client-core)
    # pgbouncer: PgBouncer in front of the embedded PostgreSQL (tests/fix_pgbouncer.py)
    command -v pgbouncer >/dev/null || packages+=(pgbouncer)
    # iproute2: `ip netns`, veth and `tc` for the WAN emulator's real-network faults (NetNamespace)
    command -v ip >/dev/null || packages+=(iproute2)
    ;;
  demo)
    # the demo's PostgreSQL is the pgserver wheel; only --pgbouncer needs a system program
    case " $* " in
      *" --pgbouncer "*) command -v pgbouncer >/dev/null || packages+=(pgbouncer) ;;
    esac
    ;;
  *) echo "usage: tools/system_packages.sh test|demo [demo args...]" >&2; exit 2 ;;
esac

[ ${#packages[@]} -gt 0 ] || exit 0
command="apt-get install -y --no-install-recommends ${packages[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${TETHER_SYSTEM_PACKAGES:-}" != print ]; then
  echo "system packages: $command" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive $command -qq >/dev/null) \
    || echo "system packages: could not install ${packages[*]}; the tests that need them skip" >&2
else
  echo "system packages missing (the tests that need them skip); to install, as root: $command" >&2
fi
