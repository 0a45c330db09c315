#!/usr/bin/env bash
# Capacity of several processes on one PostgreSQL (SPEC §10): N feeds that
# each answer after DELAY_MS (a cycle bound by the sites' latency, not by
# this machine's two cores), `concurrency` fixed per process. One cycle is
# P `veille run --once` started together on one database (they share the
# feeds through their claims) and ends when the last one exits. For P = 1,
# 2 and 3: a warm cycle (every feed answers 304) and a cycle where one feed
# in ten gained three items. Prints wall time, and the database's
# transactions and rows written (pg_stat_database) per poll and per new
# item.
#
#   PG=postgresql://veille@127.0.0.1:55432 benches/capacity.sh
#   N=1000 DELAY_MS=100 CONCURRENCY=16 PG=… benches/capacity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
DELAY_MS=${DELAY_MS:-300}
CONCURRENCY=${CONCURRENCY:-32}
PROCS=${PROCS:-1 2 3}
: "${PG:?PG=postgresql://user@host:port of a server this may create a database on}"

cargo build --release --quiet
cargo bench --bench poll_cycle --no-run --quiet 2>/dev/null
server=$(ls -t target/release/deps/poll_cycle-* | grep -v '\.d$' | head -n 1)
veille=${VEILLE:-$PWD/target/release/veille}

coproc SERVER { POLL_CYCLE_SERVE=$N POLL_CYCLE_DELAY_MS=$DELAY_MS exec "$server"; }
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
read -r base <&"${SERVER[0]}"

dir=$(mktemp -d)
db=veille_capacity
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
{
    # per_host never binds: every process may fetch `concurrency` at once.
    printf '[daemon]\ndatabase = "%s/%s"\nconcurrency = %d\nper_host = %d\ntimeout = "10s"\n\n' \
        "$PG" "$db" "$CONCURRENCY" $((CONCURRENCY * 3))
    for i in $(seq 0 $((N - 1))); do
        printf '[[feed]]\nname = "Feed %d"\nurl = "%s/f%d.xml"\n\n' "$i" "$base" "$i"
    done
    cat <<'TOML'
[[rule]]
name = "puces-ia"
any = ["puces", "semi-conducteurs", "IA", "intelligence artificielle"]
notify = ["archive"]

[channel.archive]
kind = "maildir"
path = "mail"
TOML
} >"$dir/config.toml"

written() { # transactions and rows written so far in the database
    psql -At "$PG/postgres" -c "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted
        FROM pg_stat_database WHERE datname = '$db'"
}

cycle() { # label processes polls new_items
    local before after start end p
    sleep 1 # the last cycle's statistics reach pg_stat_database
    before=$(written)
    start=$(date +%s.%N)
    local pids=()
    for _ in $(seq "$2"); do
        "$veille" --config "$dir/config.toml" --log-level error run --once &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    end=$(date +%s.%N)
    sleep 1
    after=$(written)
    IFS='|' read -r tx0 rows0 <<<"$before"
    IFS='|' read -r tx1 rows1 <<<"$after"
    local per_item=""
    if [ "$4" -gt 0 ]; then
        per_item=$(printf '  per new item: %.2f tx %.1f rows' \
            "$(echo "($tx1 - $tx0) / $4" | bc -l)" "$(echo "($rows1 - $rows0) / $4" | bc -l)")
    fi
    printf '  %-13s %d process(es): wall %6.2f s  per poll: %.2f tx %.2f rows%s\n' \
        "$1" "$2" "$(echo "$end - $start" | bc -l)" \
        "$(echo "($tx1 - $tx0) / $3" | bc -l)" "$(echo "($rows1 - $rows0) / $3" | bc -l)" "$per_item"
}

echo "capacity: $N feeds answering in $DELAY_MS ms, concurrency $CONCURRENCY per process"
cd "$dir"
cycle cold 3 "$N" $((N * 20))
for p in $PROCS; do
    cycle warm "$p" "$N" 0
    curl -fsS "$base/__bump" >/dev/null
    cycle "10 % changed" "$p" "$N" $((N / 10 * 3))
done
rm -rf "$dir"
