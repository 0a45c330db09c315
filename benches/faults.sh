#!/bin/sh
# The fault test of SPEC §10 at length: three `veille run` processes share
# one database (PostgreSQL by default, BACKEND=sqlite for a file) while one
# of them is killed with SIGKILL every 9 s and started again, one is frozen
# past its claims and its lead, and PostgreSQL is stopped for 12 s; FEEDS
# feeds (200) gain an item every 4 s, one in four alerting a mail, a
# webhook and a digest channel. The test's asserts hold at any length; this
# prints its figures. CI runs the same test for two minutes.
#
#   benches/faults.sh            # ten minutes of faults on PostgreSQL
#   MINUTES=3 BACKEND=sqlite benches/faults.sh
set -eu
cd "$(dirname "$0")/.."
minutes=${MINUTES:-10}
backend=${BACKEND:-postgres}
feeds=${FEEDS:-200}
VEILLE_TEST_BACKEND=$backend VEILLE_FAULTS_FEEDS=$feeds VEILLE_FAULTS_SECONDS=$((minutes * 60)) \
    cargo test --test it faults:: -- --nocapture 2>&1 |
    grep -E '^faults:|test result|panicked|assert'
