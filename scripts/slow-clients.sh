#!/usr/bin/env bash
# Measures the web agent's memory under slow uploads beside the course's
# workload.
#
#   scripts/slow-clients.sh      uses ../shared/datasets/cse546 ($FACECLOUD_DATASET)
#
# 1. Builds facecloud and scripts/slowclients, enrols the course gallery and
#    starts `facecloud web` and one `facecloud worker` (NPROC jobs at once)
#    on a data directory, with the web agent's default limits.
# 2. Starts CLIENTS (500) slow clients, each uploading a SIZE (10MiB) file
#    (a course image padded with zeros) at RATE bytes a second (1KiB:
#    below the web agent's minimum upload rate, so they are cut and start
#    again), and lets them run for SETTLE seconds (15).
# 3. Beside them, sends the course's WORKLOAD (1000, or 100) requests at
#    concurrency 100 with `facecloud submit --retries 0`: every request must
#    be answered right at its first attempt.
# 4. Stops the slow clients and reports what they saw, and the web agent's
#    peak RSS (VmHWM in /proc/PID/status) against BOUND_MIB (300).
#
# It fails when an answer is missing or wrong, or the peak is over the bound.
# RATE=16KiB (above the minimum rate) makes the slow uploads grow until the
# upload memory budget cuts them instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dataset=${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}
clients=${CLIENTS:-500}
size=${SIZE:-10MiB}
rate=${RATE:-1KiB}
settle=${SETTLE:-15}
workload=${WORKLOAD:-1000}
bound=${BOUND_MIB:-300}
[ -f "$dataset/face_images_$workload.zip" ] || { echo "slow-clients.sh: no course dataset at $dataset (set FACECLOUD_DATASET; WORKLOAD is 1000 or 100)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build, model, gallery" >&2
(cd "$root" && go build -o "$work/facecloud" ./agents/cmd/facecloud && go build -o "$work/slowclients" ./scripts/slowclients)
fc="$work/facecloud"
"$fc" models fetch >&2
unzip -q "$dataset/face_images_100.zip" -d "$work/g"
unzip -q "$dataset/face_images_$workload.zip" -d "$work/r"
gallery_dir=$(dirname "$(find "$work/g" -name '*.jpg' | head -n 1)")
requests_dir=$(dirname "$(find "$work/r" -name '*.jpg' | head -n 1)")
"$fc" enroll --data "$work/data" --images "$gallery_dir" --labels "$dataset/classification_100.csv" >/dev/null 2>"$work/enroll.log"

echo "== facecloud web and one worker" >&2
"$fc" web --data "$work/data" --addr 127.0.0.1:0 >"$work/web.log" 2>&1 &
web_pid=$!
pids+=("$web_pid")
"$fc" worker --data "$work/data" --concurrency "$(nproc)" >"$work/worker.log" 2>&1 &
pids+=("$!")
url=
for _ in $(seq 600); do
  url=$(sed -n 's/.*msg="web agent listening".* addr=\([^ ]*\).*/\1/p' "$work/web.log" | head -n 1)
  [ -n "$url" ] && grep -q 'msg="worker ready"' "$work/worker.log" && break
  kill -0 "$web_pid" 2>/dev/null || { cat "$work/web.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "slow-clients.sh: the agents did not start" >&2; tail -n 20 "$work/web.log" "$work/worker.log" >&2; exit 1; }
url="http://$url"
base_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$web_pid/status")

echo "== $clients slow clients, $size each at $rate/s, for ${settle}s before the workload" >&2
"$work/slowclients" -url "$url/" -clients "$clients" -size "$size" -rate "$rate" -image "$(find "$requests_dir" -name '*.jpg' | head -n 1)" \
  >"$work/slow.json" 2>"$work/slow.log" &
slow_pid=$!
pids+=("$slow_pid")
sleep "$settle"

echo "== the course's $workload requests at concurrency 100 beside them (facecloud submit --retries 0)" >&2
submit_ok=true
"$fc" submit --url "$url/" --concurrency 100 --retries 0 --labels "$dataset/classification_$workload.csv" --json "$requests_dir" \
  >"$work/submit.json" 2>"$work/submit.log" || submit_ok=false
kill -TERM "$slow_pid"
wait "$slow_pid" || true

hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$web_pid/status")
rejected=$(curl -s "$url/metrics" 2>/dev/null | grep '^facecloud_web_rejected_total' | sed 's/facecloud_web_rejected_total//' | tr '\n' ' ' || true)
echo
echo "slow clients ($clients x $size at $rate/s, $(nproc) CPUs):"
cat "$work/slow.json"
echo "workload ($workload course requests, concurrency 100, no retries):"
cat "$work/submit.json"
[ "$submit_ok" = true ] || { echo "problems:"; cat "$work/submit.log"; }
echo "web agent refusals: ${rejected:-(metrics unavailable)}"
awk -v b="$base_kib" -v h="$hwm_kib" -v bound="$bound" 'BEGIN {
  printf "web agent RSS at start: %.1f MiB; peak (VmHWM): %.1f MiB; bound %d MiB\n", b / 1024, h / 1024, bound }'
if [ "$submit_ok" != true ]; then
  echo "FAIL: the workload did not get every answer right" >&2
  exit 1
fi
if [ "$hwm_kib" -gt $((bound * 1024)) ]; then
  echo "FAIL: peak RSS over ${bound} MiB" >&2
  exit 1
fi
echo "OK"
