#!/bin/bash
# Example: cargo build --release -p stripe-emulator && stripe-emulator/tools/wrk/bench.sh "$CARGO_TARGET_DIR/release/stripe-emulator" 12111 3 100000
# Needs wrk, curl, bc.
# usage: bench.sh BIN PORT RUNS [LOAD_TOTAL]
# Starts the emulator, creates a customer, runs wrk (32 conns, 5 s) RUNS times, printing req/s,
# CPU ms per request (utime+stime delta from /proc/PID/stat / requests) and RSS; if LOAD_TOTAL is
# given, then keeps creating sessions until that many requests were sent and measures RUNS more times.
BIN=$1; PORT=${2:-12111}; RUNS=${3:-3}; LOAD=${4:-0}
URL=http://127.0.0.1:$PORT
$BIN 127.0.0.1:$PORT >/tmp/emu-$PORT.log 2>&1 &
PID=$!
trap "kill $PID" EXIT
sleep 1
export CUSTOMER=$(curl -s -u sk_test_emulator: -d email=a@example.com $URL/v1/customers | grep -o '"id": "cus_[^"]*"' | cut -d'"' -f4)
echo "pid $PID customer $CUSTOMER"
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
rss() { awk '/VmRSS/{print $2" kB"}' /proc/$PID/status; }
TOTAL=0
run() {
  local c0=$(cpu)
  local out=$(wrk -t2 -c32 -d${1}s -s "$(dirname "$0")/checkout.lua" $URL/v1/checkout/sessions)
  local c1=$(cpu)
  local n=$(echo "$out" | awk '/requests in/{print $1}')
  local rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  local non=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  TOTAL=$((TOTAL+n))
  echo "$2 req/s $rps  requests $n  cpu_ms/req $(echo "scale=3; ($c1-$c0)*1000/$TCK/$n" | bc)  non2xx ${non:-0}  total $TOTAL  rss $(rss)"
}
for i in $(seq $RUNS); do run 5 "run$i"; done
if [ "$LOAD" -gt 0 ]; then
  while [ $TOTAL -lt $LOAD ]; do run 10 "load"; done
  for i in $(seq $RUNS); do run 5 "after-load-run$i"; done
fi
