#!/usr/bin/env bash
# Regenerates the RDB files in this directory with a real redis-server.
# Usage: snapshot/tests/data/make.sh [port]   (needs redis-server, redis-cli)
# The files are committed; rerun only to change them, and update the tests
# (they check exact contents) and README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PORT=${1:-17399}
WORK=$(mktemp -d)
PID=
trap 'if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

# Far-future expiry times (2100-01-01 plus a few ms) so nothing expires.
EXP1=4102444800123
EXP2=4102444800456

start() { # $1 = extra redis-server args
    # shellcheck disable=SC2086
    redis-server --port "$PORT" --dir "$WORK" --dbfilename out.rdb --save '' \
        --appendonly no --daemonize no $1 >"$WORK/log" 2>&1 &
    PID=$!
    for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
    echo "redis-server did not start" >&2; cat "$WORK/log" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; rm -f "$WORK/out.rdb"; }
cli() { redis-cli -p "$PORT" "$@" >/dev/null; }
save_as() { redis-cli -p "$PORT" save >/dev/null; cp "$WORK/out.rdb" "$1"; }

strings() {
    # Integers at every encoding edge, and strings that only look like one.
    for v in 0 1 -1 127 128 -128 -129 32767 32768 -32768 -32769 \
             2147483647 2147483648 -2147483648 -2147483649 \
             9223372036854775807 -0 007 +5 ' 5' 1.5; do
        cli set "int:$v" "$v"
    done
    cli set 12345 "integer key"
    cli set empty ""
    cli set lzf "$(printf 'abcdefgh%.0s' $(seq 40))"
    cli set lzf-key-$(printf 'k%.0s' $(seq 30)) "v"
    cli set run21 aaaaaaaaaaaaaaaaaaaaa
    cli set run22 aaaaaaaaaaaaaaaaaaaaaa
    cli set nocompress "$(printf 'the quick brown fox jumps over the lazy dog')"
    printf 'binary\x00\x01\xff\xfe\r\n' | redis-cli -p "$PORT" -x set binary >/dev/null
    cli set ttl1 x pxat "$EXP1"
    cli set ttl2 "$(printf 'y%.0s' $(seq 100))" pxat "$EXP2"
    cli -n 1 set db1 one
    cli -n 1 set db1-ttl one pxat "$EXP1"
    cli -n 15 set db15 fifteen
}

# 1. Strings of every encoding, 3 dbs, expiries; Redis's default options.
start ""
strings
save_as redis-7.0-strings.rdb
stop

# 2. The same with rdbcompression and rdbchecksum off.
start "--rdbcompression no --rdbchecksum no"
strings
save_as redis-7.0-strings-nocompress-nochecksum.rdb
stop

# 3. LFU policy (FREQ before each key) and a function library (FUNCTION2).
start "--maxmemory-policy allkeys-lfu"
cli set a 1
cli set b two
cli function load "#!lua name=mylib
redis.register_function('f', function() return 1 end)"
save_as redis-7.0-lfu-function.rdb
stop

# 4. LRU policy (IDLE before each key).
start "--maxmemory-policy allkeys-lru"
cli set a 1
cli set b two
save_as redis-7.0-lru.rdb
stop

# 5. A list after a string.
start ""
cli set a 1
cli rpush mylist x y z
save_as redis-7.0-list.rdb
stop

ls -l ./*.rdb
