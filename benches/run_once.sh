#!/usr/bin/env bash
# The command a user runs, end to end: `veille run --once` (release build)
# on N feeds of the poll_cycle benchmark, served over loopback by that
# benchmark's server process, wire copies off and on, interleaved, ROUNDS
# times. Each round in a fresh directory: cold (every item new, alerts
# written to a Maildir), warm (all 304), then one feed in ten gains three
# items (`10 % changed`). Prints wall, CPU (user + sys) and peak RSS.
#
#   benches/run_once.sh              # N=1000, ROUNDS=3
#   N=10000 ROUNDS=1 benches/run_once.sh
#   PG=postgresql://user@127.0.0.1:5432 benches/run_once.sh   # on PostgreSQL:
#       a database of its own per round, made afresh with psql
#   VEILLE=/path/to/another/veille benches/run_once.sh        # another build
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
ROUNDS=${ROUNDS:-3}

cargo build --release --quiet
cargo bench --bench poll_cycle --no-run --quiet 2>/dev/null
server=$(ls -t target/release/deps/poll_cycle-* | grep -v '\.d$' | head -n 1)
veille=${VEILLE:-$PWD/target/release/veille}

coproc SERVER { POLL_CYCLE_SERVE=$N exec "$server"; }
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
read -r base <&"${SERVER[0]}"

measure() { # label dir
    /usr/bin/time -f "%e %U %S %M" -o "$2/time" \
        "$veille" --config "$2/config.toml" --log-level error run --once
    read -r wall user sys rss <"$2/time"
    printf '  %-14s wall %6.2f s  cpu %6.2f s  peak RSS %4d MiB\n' \
        "$1" "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024))
}

for round in $(seq "$ROUNDS"); do
    for wire in false true; do
        dir=$(mktemp -d)
        database=""
        if [ -n "${PG:-}" ]; then
            db="bench_${round}_$wire"
            psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
            database="database = \"$PG/$db\""
        fi
        {
            printf '[daemon]\n%s\nconcurrency = 16\nper_host = 16\nwire_copies = %s\n\n' "$database" "$wire"
            for i in $(seq 0 $((N - 1))); do
                printf '[[feed]]\nname = "Feed %d"\nurl = "%s/f%d.xml"\n\n' "$i" "$base" "$i"
            done
            cat <<'TOML'
[[rule]]
name = "puces-ia"
any = ["puces", "semi-conducteurs", "IA", "intelligence artificielle"]
none = ["jeu vidéo"]
notify = ["archive"]

[[rule]]
name = "tarifs"
all = ["droits de douane"]
any = ["Chine", "Pékin", "États-Unis", "Washington"]
notify = ["archive"]

[[rule]]
name = "energie"
any = ["nucléaire", "EDF", "hydrogène*"]
notify = ["archive"]

[channel.archive]
kind = "maildir"
path = "mail"
TOML
        } >"$dir/config.toml"
        curl -fsS "$base/__reset" >/dev/null
        echo "round $round, wire copies $wire"
        measure cold "$dir"
        measure warm "$dir"
        curl -fsS "$base/__bump" >/dev/null
        measure "10 % changed" "$dir"
        rm -rf "$dir"
    done
done
