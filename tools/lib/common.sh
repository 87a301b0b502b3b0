# Shared by tools/run and tools/test: package installation, the build, and local PostgreSQL and
# Redis servers. Source it; it defines functions only.

SB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SB_PG_BIN=/usr/lib/postgresql/15/bin
# Let clones in other directories (CI checks out a fresh one) reuse ccache results.
export CCACHE_BASEDIR=$SB_ROOT CCACHE_NOHASHDIR=1

sb_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
sb_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages of tools/lib/packages.txt that are missing.
sb_install_packages() {
  local wanted missing=()
  wanted=$(grep -v '^\s*#' "$SB_ROOT/tools/lib/packages.txt" | grep -v '^\s*$')
  for p in $wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  sb_log "installing ${#missing[@]} packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq || sb_die "apt-get update failed"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    sb_die "apt-get install failed for: ${missing[*]}"
}

# sb_build DIR BUILD_TYPE TARGET [cmake args...]: configures (again each time, so that the cmake
# args always apply; it is quick) and builds TARGET ("all" for everything).
sb_build() {
  local dir=$1 type=$2 target=$3
  shift 3
  mkdir -p "$dir"
  cmake -S "$SB_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log" >&2; sb_die "cmake configure failed"; }
  # $target may name several targets, space-separated.
  # shellcheck disable=SC2086
  cmake --build "$dir" --target $target || sb_die "build failed"
}

# A TCP port on 127.0.0.1 that nothing listens on right now and that is not among the arguments.
sb_free_port() {
  local port taken=" $* "
  while :; do
    port=$((20000 + RANDOM % 30000))
    [[ $taken == *" $port "* ]] && continue
    ss -Htln "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

# Runs a command as the postgres user when we are root (postgres refuses to run as root).
sb_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# True when the postgres user can reach DIR (every parent directory must be searchable by it).
sb_pg_can_reach() { [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$1"; }

# sb_pg_start DATADIR PORT: initialises DATADIR if empty and starts PostgreSQL 15 on 127.0.0.1.
# DATADIR's parent must be reachable by the postgres user (see sb_pg_can_reach).
sb_pg_start() {
  local data port=$2
  mkdir -p "$1"
  # The postgres user must not go through a link under a directory closed to it (.local/pg).
  data=$(readlink -f "$1")
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$data"
  chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    sb_as_pg "$SB_PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$data.initdb.log" 2>&1 || sb_die "initdb failed: see $data.initdb.log"
  fi
  sb_as_pg "$SB_PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 ${SB_PG_EXTRA_OPTS:-}" start >/dev/null ||
    sb_die "PostgreSQL did not start: see $data/server.log"
}

sb_pg_stop() {
  local data
  data=$(readlink -f "$1")
  [ -f "$data/postmaster.pid" ] || return 0
  sb_as_pg "$SB_PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

sb_pg_running() {
  [ -f "$1/postmaster.pid" ] && sb_as_pg "$SB_PG_BIN/pg_ctl" -D "$(readlink -f "$1")" status >/dev/null 2>&1
}

# sb_redis_start DIR PORT: starts Redis 7 on 127.0.0.1 (no persistence: its state is rebuildable).
sb_redis_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null ||
    sb_die "redis-server did not start"
  local i
  for i in $(seq 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  sb_die "Redis on port $port does not answer: see $dir/redis.log"
}

sb_redis_stop() {
  local dir=$1
  [ -f "$dir/redis.pid" ] || return 0
  local pid
  pid=$(cat "$dir/redis.pid")
  # Only signal the pid if it still is our redis-server (pid files outlive reboots).
  if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *redis* ]]; then kill "$pid" 2>/dev/null || true; fi
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/redis.pid"
}
