#!/usr/bin/env bash
# Storage throughput (P11 in shared/design/performance.md): upload and download
# MB/s of 1 MiB and large objects through /storage/v1 on the file backend,
# beside `dd` copying the same bytes on the same disk in the same run, and the
# server's peak RSS (VmHWM) over the whole run.
#
#   cargo build --release && loadtests/storage/run.sh            # 1 GiB object
#   SIZE_MB=5120 loadtests/storage/run.sh                        # 5 GiB object
#   loadtests/storage/run.sh --quick                             # 64 MiB, for CI
#
# Neither side fsyncs (object_store's LocalFileSystem does not; dd runs without
# conv=fsync), so both measure the same page-cache path. Needs curl and
# PostgreSQL's server binaries (the server runs its embedded cluster).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MB=${SIZE_MB:-1024}
SMALL=${SMALL:-100}
if [[ "${1:-}" == "--quick" ]]; then SIZE_MB=64; SMALL=20; fi
BIN=${FLUXBASE_BIN:-target/release/fluxbase}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/fluxbase-storage-bench.XXXXXX")
chmod 755 "$WORK"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
SECRET=bench-secret-bench-secret-bench-secret-0123
URL="http://127.0.0.1:$PORT"
env FLUXBASE_JWT_SECRET=$SECRET FLUXBASE_STORAGE_FILE_SIZE_LIMIT=$(( (SIZE_MB + 1) * 1048576 )) \
    FLUXBASE_EMBEDDED_FSYNC=off FLUXBASE_LOG_LEVEL=warn \
    "$BIN" serve --data-dir "$WORK/data" --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 1 600); do curl -fs "$URL/health" >/dev/null 2>&1 && break; sleep 0.1; done
KEY=$(FLUXBASE_JWT_SECRET=$SECRET "$BIN" status --data-dir "$WORK/data" --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["service_role_key"])')
H=(-H "apikey: $KEY" -H "Authorization: Bearer $KEY")
curl -fsS "${H[@]}" -H 'content-type: application/json' -d '{"name":"bench"}' "$URL/storage/v1/bucket" >/dev/null

mbps() { python3 -c "print(f'{$1/1048576/($2):.0f}')"; }
secs() { python3 -c "import time;print(time.time())"; }

dd if=/dev/urandom of="$WORK/src.bin" bs=1M count="$SIZE_MB" status=none
dd if=/dev/urandom of="$WORK/small.bin" bs=1M count=1 status=none
BYTES=$(( SIZE_MB * 1048576 ))

# Large object.
t0=$(secs); dd if="$WORK/src.bin" of="$WORK/dd.bin" bs=1M status=none; t1=$(secs)
dd_w=$(mbps $BYTES "$t1-$t0")
t0=$(secs); dd if="$WORK/dd.bin" of=/dev/null bs=1M status=none; t1=$(secs)
dd_r=$(mbps $BYTES "$t1-$t0")
rm -f "$WORK/dd.bin"
up=$(curl -fsS -o /dev/null -w '%{time_total}' "${H[@]}" -H 'content-type: application/octet-stream' -X POST -T "$WORK/src.bin" "$URL/storage/v1/object/bench/large.bin")
down=$(curl -fsS -o /dev/null -w '%{time_total}' "${H[@]}" "$URL/storage/v1/object/bench/large.bin")
up_l=$(mbps $BYTES "$up"); down_l=$(mbps $BYTES "$down")

# 1 MiB objects, one after another.
t0=$(secs)
for i in $(seq 1 "$SMALL"); do dd if="$WORK/small.bin" of="$WORK/dd-small-$i.bin" bs=1M status=none; done
t1=$(secs); dd_sw=$(mbps $((SMALL * 1048576)) "$t1-$t0"); rm -f "$WORK"/dd-small-*.bin
t0=$(secs)
for i in $(seq 1 "$SMALL"); do
  curl -fsS -o /dev/null "${H[@]}" -H 'content-type: application/octet-stream' -X POST -T "$WORK/small.bin" "$URL/storage/v1/object/bench/small-$i.bin"
done
t1=$(secs); up_s=$(mbps $((SMALL * 1048576)) "$t1-$t0")
t0=$(secs)
for i in $(seq 1 "$SMALL"); do curl -fsS -o /dev/null "${H[@]}" "$URL/storage/v1/object/bench/small-$i.bin"; done
t1=$(secs); down_s=$(mbps $((SMALL * 1048576)) "$t1-$t0")

HWM=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$SERVER/status")
printf '%-28s %10s %10s %8s\n' "scenario" "fluxbase" "dd" "ratio"
printf '%-28s %10s %10s %8s\n' "upload ${SIZE_MB} MiB (MB/s)" "$up_l" "$dd_w" "$(python3 -c "print(f'{$up_l/$dd_w:.2f}')")"
printf '%-28s %10s %10s %8s\n' "download ${SIZE_MB} MiB (MB/s)" "$down_l" "$dd_r" "$(python3 -c "print(f'{$down_l/$dd_r:.2f}')")"
printf '%-28s %10s %10s %8s\n' "upload ${SMALL}x1 MiB (MB/s)" "$up_s" "$dd_sw" "$(python3 -c "print(f'{$up_s/$dd_sw:.2f}')")"
printf '%-28s %10s %10s\n' "download ${SMALL}x1 MiB (MB/s)" "$down_s" "-"
printf '%-28s %10s\n' "server peak RSS (MiB)" "$HWM"
