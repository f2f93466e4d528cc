#!/usr/bin/env bash
# Instructions per warm checkout in meterpay, counted by callgrind.
#
# Instruction counts do not depend on what else the machine is doing, so this
# compares two builds on a busy machine where requests/s and CPU ms cannot.
# It starts the standalone Stripe emulator and `meterpay serve` (under
# `valgrind --tool=callgrind`), installs a Stripe app, creates a customer and
# links its Stripe customer, sends WARMUP warm checkouts with wrk, zeroes
# callgrind's counters, sends N more, dumps the counters and prints the
# instructions per request and the top inclusive costs.
#
#   cargo build --profile profiling -p meterpay -p stripe-emulator
#   bench/callgrind.sh                       # SQLite, N=200
#   BACKEND=postgres N=500 bench/callgrind.sh
#
# Settings (environment): N (200) and WARMUP (50) warm checkouts; CONNECTIONS
# (wrk's, 1); BACKEND sqlite|postgres; POSTGRES_URL
# (postgres://postgres@127.0.0.1:5432/test; a throwaway schema is created and
# dropped); BIN_DIR (target/profiling: release code with symbols, see the
# `profiling` profile in Cargo.toml; target/release works but its stripped
# binaries name no functions); OUT (a new directory under /tmp, kept: the
# callgrind file for `callgrind_annotate`/kcachegrind and the logs); TOP (40)
# lines of inclusive costs.
set -euo pipefail

N=${N:-200}
WARMUP=${WARMUP:-50}
CONNECTIONS=${CONNECTIONS:-1}
BACKEND=${BACKEND:-sqlite}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/target/profiling}
OUT=${OUT:-$(mktemp -d /tmp/meterpay-callgrind.XXXXXX)}
TOP=${TOP:-40}
TOKEN=bench-token
KEY=sk_test_meterpaybench

for tool in valgrind callgrind_control callgrind_annotate wrk curl jq; do
    command -v "$tool" >/dev/null || {
        echo "needs $tool on PATH (Debian: apt-get install -y valgrind wrk curl jq)" >&2
        exit 1
    }
done
for bin in meterpay stripe-emulator; do
    [[ -x $BIN_DIR/$bin ]] || {
        echo "no $BIN_DIR/$bin: cargo build --profile profiling -p meterpay -p stripe-emulator" >&2
        exit 1
    }
done
mkdir -p "$OUT"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PIDS=()
SCHEMA=
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n $SCHEMA ]]; then
        psql -q "$POSTGRES_URL" -c "DROP SCHEMA $SCHEMA CASCADE" >/dev/null || true
    fi
}
trap cleanup EXIT

wait_for() { # url seconds
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "$1 did not answer within $2 s; see $OUT" >&2; exit 1; }
        sleep 0.2
    done
}

case $BACKEND in
sqlite) DATABASE_URL="sqlite://$OUT/meterpay.db" ;;
postgres)
    SCHEMA=meterpay_callgrind_$$
    psql -q "$POSTGRES_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null
    sep='?'; [[ $POSTGRES_URL == *\?* ]] && sep='&'
    DATABASE_URL="$POSTGRES_URL${sep}options=-c%20search_path%3D$SCHEMA"
    ;;
*) echo "BACKEND is sqlite or postgres" >&2; exit 1 ;;
esac

EMULATOR_PORT=$(free_port)
EMULATOR=http://127.0.0.1:$EMULATOR_PORT
NO_COLOR=1 "$BIN_DIR/stripe-emulator" --listen "127.0.0.1:$EMULATOR_PORT" --api-key "$KEY" \
    >"$OUT/emulator.log" 2>&1 &
PIDS+=($!)
wait_for "$EMULATOR/_emulator/health" 30

METERPAY_PORT=$(free_port)
METERPAY=http://127.0.0.1:$METERPAY_PORT
env $(env | grep -o '^METERPAY_[A-Z_]*' | sed 's/^/-u /') \
    NO_COLOR=1 METERPAY_API_TOKENS="$TOKEN=bench" \
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    "$BIN_DIR/meterpay" serve --listen "127.0.0.1:$METERPAY_PORT" \
    --database-url "$DATABASE_URL" --data-dir "$OUT" --stripe-api-base "$EMULATOR" \
    >"$OUT/meterpay.log" 2>&1 &
METERPAY_PID=$!
PIDS+=("$METERPAY_PID")
wait_for "$METERPAY/readyz" 300

call() { # method path json
    curl -fsS -X "$1" "$METERPAY$2" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data "$3"
}
call POST /api/v3/openmeter/app-catalog/install \
    "{\"type\":\"stripe\",\"name\":\"Stripe (callgrind)\",\"create_billing_profile\":true,\"api_key\":\"$KEY\"}" >/dev/null
CUSTOMER=$(call POST /api/v3/openmeter/customers \
    '{"name":"Warm Co","key":"warm","primary_email":"warm@example.com","currency":"USD"}' | jq -r .id)
WARM_PATH=/api/v3/openmeter/customers/$CUSTOMER/billing/stripe/checkout-sessions
WARM_BODY='{"stripe_options":{"success_url":"https://example.com/done?session={CHECKOUT_SESSION_ID}"}}'
call POST "$WARM_PATH" "$WARM_BODY" >/dev/null # links the Stripe customer: later ones are warm

# wrk: the warm checkout; each thread stops after `quota` responses (wrk's
# second script argument) and prints how many answered >= 400.
cat >"$OUT/warm.lua" <<EOF
wrk.method = "POST"
wrk.path = "$WARM_PATH"
wrk.body = '$WARM_BODY'
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) quota = tonumber(args[1]); seen = 0; failed = 0 end
function response(status, headers, body)
  seen = seen + 1
  if status >= 400 then failed = failed + 1 end
  if seen >= quota then wrk.thread:stop() end
end
function done()
  local f = 0
  for _, t in ipairs(threads) do f = f + t:get("failed") end
  io.write("failed responses: ", f, "\n")
end
EOF
sessions_since() { # seq -> count of POST /v1/checkout/sessions answered 200 since
    curl -fsS "$EMULATOR/_emulator/requests?since=$1" |
        jq '[.data[] | select(.method == "POST" and .path == "/v1/checkout/sessions" and .status == 200)] | length'
}
last_seq() { curl -fsS "$EMULATOR/_emulator/requests?since=0" | jq .last_seq; }
settle() { # until the emulator has seen no request for a second (meterpay is idle)
    local before=-1 now
    now=$(last_seq)
    while [[ $now != "$before" ]]; do before=$now; sleep 1; now=$(last_seq); done
    sleep 1
}

run_wrk() { # requests
    local per_connection=$(( ($1 + CONNECTIONS - 1) / CONNECTIONS )) since wrk_pid
    since=$(last_seq)
    # One thread per connection, so each thread's quota is exact. A thread
    # that met its quota stops, but wrk waits out -d: interrupt it (it then
    # reports as usual) once the emulator has seen every session.
    wrk -t "$CONNECTIONS" -c "$CONNECTIONS" -d 3600s --timeout 120s \
        -s "$OUT/warm.lua" "$METERPAY" -- "$per_connection" >"$OUT/wrk.log" 2>&1 &
    wrk_pid=$!
    while (( $(sessions_since "$since") < per_connection * CONNECTIONS )); do
        kill -0 "$wrk_pid" 2>/dev/null || break
        sleep 0.5
    done
    sleep 1
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" || true
    grep -q '^failed responses: 0$' "$OUT/wrk.log" || { cat "$OUT/wrk.log" >&2; exit 1; }
}

[[ $WARMUP -gt 0 ]] && run_wrk "$WARMUP"
settle
SINCE=$(last_seq)
callgrind_control -z "$METERPAY_PID" >/dev/null
run_wrk "$N"
settle
callgrind_control -d "$METERPAY_PID" >/dev/null
COUNT=$(sessions_since "$SINCE")
DUMP=$(ls -t "$OUT"/callgrind.out.* | head -1)
IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$DUMP")
echo "backend $BACKEND, $CONNECTIONS connection(s): $COUNT warm checkouts, $IR instructions in meterpay"
echo "instructions per warm checkout: $((IR / COUNT))"
echo "profile: $DUMP (callgrind_annotate --inclusive=yes $DUMP)"
callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null |
    sed -n '/^Ir/,$p' | grep -v '^-\|^$' | head -n "$TOP" | cut -c1-200
