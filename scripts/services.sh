#!/usr/bin/env bash
# The servers `make test` needs for the cluster: PostgreSQL (the shared ledger) and Redis (the
# Celery broker). The machine's own are used when they answer on their standard ports;
# otherwise Debian's packages are installed if missing and started for this test run only, in
# a private directory, on free ports, and stopped after.
#
#   scripts/services.sh start DIR   prints the environment for the tests (eval it)
#   scripts/services.sh stop DIR    stops what `start DIR` started (nothing if it started none)
set -euo pipefail

cmd=${1:?usage: services.sh start|stop DIR}
dir=${2:?usage: services.sh start|stop DIR}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

# ROBOTS_PRIVATE_SERVICES=1 starts private servers even when the machine's answer
private=${ROBOTS_PRIVATE_SERVICES:-}
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
standard() { [ -z "$private" ] && answers "$1"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install() {  # Debian packages, only when their programs are missing
  local missing=""
  [ -n "$(pg_bin)" ] || missing="$missing postgresql"
  command -v redis-server >/dev/null || missing="$missing redis-server"
  if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
}

start() {
  mkdir -p "$dir"
  local pg_url="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
  local redis_url="redis://127.0.0.1:6379/15"
  if ! standard 5432 || ! standard 6379; then
    install
  fi
  if ! standard 5432; then
    local port bin run_as=()
    port=$(free_port)
    bin=$(pg_bin)
    mkdir -p "$dir/pg"
    if [ "$(id -u)" = 0 ]; then  # initdb refuses root: the cluster belongs to postgres
      chown postgres: "$dir" "$dir/pg"
      run_as=(runuser -u postgres --)
    fi
    "${run_as[@]}" "$bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust >"$dir/pg/initdb.log"
    "${run_as[@]}" "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w \
      -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >&2
    echo "started a PostgreSQL for the tests on port $port" >&2
    pg_url="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
  fi
  if ! standard 6379; then
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 50); do answers "$port" && break; sleep 0.1; done
    echo "started a Redis for the tests on port $port" >&2
    redis_url="redis://127.0.0.1:$port/15"
  fi
  echo "export ROBOTS_TEST_POSTGRES=$pg_url ROBOTS_TEST_REDIS=$redis_url"
}

stop() {
  if [ -d "$dir/pg/data" ]; then
    local run_as=()
    [ "$(id -u)" = 0 ] && run_as=(runuser -u postgres --)
    "${run_as[@]}" "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null || true
  fi
  if [ -f "$dir/redis.pid" ]; then
    kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

"$cmd"
