#!/usr/bin/env bash
# Benchmarks the whole system on one machine against the engine alone.
#
#   scripts/bench-local.sh     uses ../shared/datasets/cse546 ($FACECLOUD_DATASET)
#
# 1. Builds facecloud, enrols the course gallery (face_images_100) and starts
#    `facecloud local` on a free port with all workers started up front
#    (--min-workers = --max-workers, default the number of CPUs), so the run
#    measures the warm system, not worker start-up.
# 2. Service: the course's 1000 requests at concurrency 100 (CONCURRENCY) through
#    `facecloud submit` on one core (POST /, as the course's generator): throughput and
#    p50/p95/p99 latency, and the engine time of each request from its stored
#    Result (recognition_ms).
# 3. Service overhead per request: 200 requests one at a time through
#    POST /v1/recognitions, whose answer carries recognition_ms: end-to-end
#    latency minus recognition time is what the web agent, store, queues and
#    worker loop add (upload, store, queue hop, reply routing). Beside it,
#    200 calls of GET /healthz by curl: the HTTP exchange on a new
#    connection alone, which any HTTP service pays.
# 4. Reference: the same 1000 images through `facecloud recognize` (the engine
#    in one process, no queue), run just before and just after the service,
#    and the ratio of the throughputs (against the two runs' mean, so that
#    load from elsewhere that comes or goes during the run weighs on both
#    sides). Also the CPU time per request of the service's processes (web
#    agent and workers) against the engine's alone: the throughput ratio
#    the service would reach with the cores to itself, which other load on
#    the machine moves much less than it moves wall time; and that CPU
#    split into the web agent's, the workers' and the load generator's.
#    Beside it, the context switches per request of the web agent and of
#    the workers, and per image of the engine alone: each costs CPU, how
#    much depends on the machine (docs/benchmarks.md), so the script also
#    prints what a round trip between two processes costs on this one.
#
# RUNS=N repeats the run (the start of facecloud local and steps 2-4) N
# times (default 1), each on a fresh copy of the enrolled store, and then prints the lowest, median and highest of each
# figure: on a shared or virtual machine one run moves by a third from the
# next (docs/benchmarks.md), so a verdict needs several. Each run's store
# stays until the script ends: on ext4 without a journal, creating a file
# costs several times more for up to six minutes after many files near it
# were deleted (docs/benchmarks.md, "File creation after deletions"), so removing
# one run's store would weigh on the next run's service, not on its
# reference. Each run prints what creating a file beside its store costs.
#
# WORKERS=N sets the worker processes (default the number of CPUs), and
# LOCAL_FLAGS passes more flags to facecloud local, for example
# LOCAL_FLAGS="--worker-concurrency 1" to compare fleet shapes.
# CONCURRENCY=N sets the requests in flight in step 2 (default 100; the
# course also sends its 1000 all at once, which queues most of them).
#
# KEEP=1 leaves the work directory (the build, the images and each run's
# store) in place and prints where it is, so that invocations back to back,
# say alternating two builds, do not pay for each other's clean-up (see
# RUNS); remove it when the measurements are done.
#
# PROFILE=DIR also writes CPU profiles (go tool pprof) of the web agent
# and of each worker, taken through their --pprof listeners while the
# course workload runs (DIR/load-*.pprof) and while the requests go one at
# a time (DIR/seq-*.pprof), and an execution trace of the web agent and of
# one worker during the latter (DIR/seq-*.trace).
#
# Needs curl, jq and python3 (installed with apt-get when missing and run
# as root).
# Other load on the machine skews the figures: run it on a quiet machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dataset=${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}
workers=${WORKERS:-$(nproc)}
concurrency=${CONCURRENCY:-100}
case $concurrency in ''|*[!0-9]*|0) echo "bench-local.sh: CONCURRENCY=$concurrency: want a whole number of requests, 1 or more" >&2; exit 1 ;; esac
runs=${RUNS:-1}
case $runs in ''|*[!0-9]*|0) echo "bench-local.sh: RUNS=$runs: want a whole number of runs, 1 or more" >&2; exit 1 ;; esac
profile_dir=${PROFILE:-}
[ -z "$profile_dir" ] || { mkdir -p "$profile_dir" && profile_dir=$(cd "$profile_dir" && pwd); }
[ -f "$dataset/face_images_1000.zip" ] || { echo "bench-local.sh: no course dataset at $dataset (set FACECLOUD_DATASET)" >&2; exit 1; }

for tool in curl jq python3; do
  if ! command -v "$tool" >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "bench-local.sh: installing $tool (apt-get)" >&2
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
    else
      echo "bench-local.sh: $tool is missing; install it" >&2
      exit 1
    fi
  fi
done

work=$(mktemp -d)
local_pid=
cleanup() {
  if [ -n "$local_pid" ] && kill -0 "$local_pid" 2>/dev/null; then
    kill -TERM "$local_pid"
    wait "$local_pid" || true
  fi
  if [ -n "${KEEP:-}" ]; then
    echo "bench-local.sh: KEEP is set: the work directory stays at $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

echo "== build, model, gallery" >&2
(cd "$root" && go build -o "$work/facecloud" ./agents/cmd/facecloud)
fc="$work/facecloud"
"$fc" models fetch >&2
unzip -q "$dataset/face_images_100.zip" -d "$work/g"
unzip -q "$dataset/face_images_1000.zip" -d "$work/r"
gallery_dir=$(dirname "$(find "$work/g" -name '*.jpg' | head -n 1)")
requests_dir=$(dirname "$(find "$work/r" -name '*.jpg' | head -n 1)")
# Enrolled once; each run starts from a copy, so no run meets another's store.
"$fc" enroll --data "$work/enrolled" --images "$gallery_dir" --labels "$dataset/classification_100.csv" >/dev/null 2>"$work/enroll.log"

# counted OUT CMD... runs CMD and writes to OUT the CPU seconds (user and
# system) and the context switches (voluntary, involuntary) that it and its
# threads used: getrusage of the child, which counts threads that have
# ended too.
counted() {
  local out=$1
  shift
  python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"{r.ru_utime + r.ru_stime} {r.ru_nvcsw} {r.ru_nivcsw}\n")
sys.exit(rc)' "$out" "$@"
}

# reference runs the engine alone on the 1000 images; its wall seconds go
# to $work/ref-$1.wall, its CPU seconds and context switches to
# $work/ref-$1.ru.
reference() {
  echo "== reference ($1): facecloud recognize on the same 1000 images" >&2
  local t0 t1
  t0=$(date +%s.%N)
  counted "$work/ref-$1.ru" "$fc" recognize --data "$data" "$requests_dir" >"$work/recognize.txt"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >"$work/ref-$1.wall"
}

# cpu_seconds is the CPU time so far of facecloud local (web agent and
# scaler) and of its workers: "WEB WORKERS". switches is the same for
# context switches (voluntary and involuntary, summed over each process's
# threads, which in Go live as long as the process).
tck=$(getconf CLK_TCK)
cpu_seconds() {
  local web workers
  web=$(awk -v tck="$tck" '{ print ($14 + $15) / tck }' /proc/"$local_pid"/stat)
  workers=$(for p in $(cat /proc/"$local_pid"/task/*/children 2>/dev/null); do cat "/proc/$p/stat" 2>/dev/null; done |
    awk -v tck="$tck" '{ s += $14 + $15 } END { print s / tck }')
  echo "$web $workers"
}
switches() {
  local web workers
  web=$(cat /proc/"$local_pid"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }')
  workers=$(for p in $(cat /proc/"$local_pid"/task/*/children 2>/dev/null); do cat /proc/"$p"/task/*/status 2>/dev/null; done |
    awk '/ctxt_switches/ { s += $2 } END { print s + 0 }')
  echo "$web $workers"
}

# one_run runs the reference, the service and the reference again, prints
# the run's figures and appends them to $work/runs.jsonl.
one_run() {
data="$work/run-$run/data"
mkdir -p "$work/run-$run"
cp -a "$work/enrolled" "$data"
# What creating a file next to the store costs now (500 files, one touch).
mkdir "$work/run-$run/probe"
local c0 c1
c0=$(date +%s%N)
(cd "$work/run-$run/probe" && touch $(seq -f 'f%g' 500))
c1=$(date +%s%N)
create_us=$(( (c1 - c0) / 500000 ))
# What a round trip between two processes costs now: one byte there and
# back over two pipes, 20,000 times (two context switches and four system
# calls each: what a hop between the agents costs the kernel here).
hop_us=$(python3 -c '
import os, time
r1, w1 = os.pipe(); r2, w2 = os.pipe(); n = 20000
if os.fork() == 0:
    for _ in range(n): os.read(r1, 1); os.write(w2, b"x")
    os._exit(0)
t = time.perf_counter()
for _ in range(n): os.write(w1, b"x"); os.read(r2, 1)
t = time.perf_counter() - t
os.wait()
print(round(t / n * 1e6, 1))')
reference before

pprof_flag=()
[ -z "$profile_dir" ] || pprof_flag=(--pprof 127.0.0.1:0)
echo "== facecloud local ($workers workers, started up front)" >&2
"$fc" local --addr 127.0.0.1:0 --data "$data" --min-workers "$workers" --max-workers "$workers" "${pprof_flag[@]}" ${LOCAL_FLAGS:-} \
  >"$work/local.out" 2>"$work/local.log" &
local_pid=$!
url=
for _ in $(seq 600); do
  url=$(sed -n 's/.*msg="facecloud local running".* url=\([^ ]*\).*/\1/p' "$work/local.log" | head -n 1)
  ready=$(grep -c 'msg="worker ready" agent=fleet' "$work/local.log" || true)
  [ -n "$url" ] && [ "$ready" -ge "$workers" ] && break
  kill -0 "$local_pid" 2>/dev/null || { cat "$work/local.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "bench-local.sh: facecloud local did not start" >&2; tail -n 20 "$work/local.log" >&2; exit 1; }
url=${url%/}
# local creates an admin key on its first start; the requests carry it.
key=$(tr -d '\n' <"$data/admin.key")

# profile PHASE SECONDS takes CPU profiles of the web agent and every
# worker in the background (PROFILE only); profile_wait waits for them.
profile_pids=()
profile() {
  [ -n "$profile_dir" ] || return 0
  local line name addr
  while read -r line; do
    addr=$(sed -n 's/.* addr=\([^ ]*\).*/\1/p' <<<"$line")
    name=$(sed -n 's/.* name=\([^ ]*\).*/\1/p' <<<"$line")
    curl -sS -o "$profile_dir/$1-${name:-web}.pprof" "http://$addr/debug/pprof/profile?seconds=$2" &
    profile_pids+=($!)
    if [ -n "${3:-}" ] && { [ -z "$name" ] || [ "$name" = local-1 ]; }; then
      curl -sS -o "$profile_dir/$1-${name:-web}.trace" "http://$addr/debug/pprof/trace?seconds=$3" &
      profile_pids+=($!)
    fi
  done < <(grep 'msg="serving pprof"' "$work/local.log")
}
profile_wait() {
  [ "${#profile_pids[@]}" = 0 ] || wait "${profile_pids[@]}"
  profile_pids=()
}

echo "== service: 1000 requests at concurrency $concurrency (facecloud submit)" >&2
profile load 8
read -r web0 workers0 < <(cpu_seconds)
read -r websw0 workerssw0 < <(switches)
# The load generator runs on one core (GOMAXPROCS=1): it needs a tenth of
# one, and with both it takes more CPU from the service on the same cores
# (docs/benchmarks.md, "The next job with the reply, and the load generator
# on one core").
counted "$work/submit.ru" env GOMAXPROCS=1 "$fc" submit --url "$url/" --api-key "$key" --concurrency "$concurrency" --labels "$dataset/classification_1000.csv" --json "$requests_dir" >"$work/submit.json"
read -r web1 workers1 < <(cpu_seconds)
read -r websw1 workerssw1 < <(switches)
client_cpu=$(cut -d' ' -f1 "$work/submit.ru")
profile_wait
rec_stats=$(cat "$data/store/results/"*.json | jq -s '
  [.[].recognition_ms] | sort | {n: length, mean: (add / length), p50: .[(length * 0.50 | floor)], p95: .[(length * 0.95 | floor)]}')

echo "== the HTTP exchange alone: 200 calls of GET /healthz one at a time (curl)" >&2
floor=$(for _ in $(seq 200); do curl -sS -o /dev/null -w '%{time_total}\n' "$url/healthz"; done |
  sort -n | awk '{ a[NR] = $1 } END { print a[int(NR / 2) + 1] * 1000 }')

echo "== overhead: 200 requests one at a time (POST /v1/recognitions)" >&2
: >"$work/seq.tsv"
profile seq 10 3
# awk, not head: head stops reading at 200 lines, and sort's SIGPIPE then
# fails the pipeline (pipefail) whenever its output outgrew the pipe.
find "$requests_dir" -name '*.jpg' | sort | awk 'NR <= 200' | while read -r f; do
  curl -sS -o "$work/one.json" -w '%{time_total}\n' -H "Authorization: Bearer $key" -F "inputFile=@$f" "$url/v1/recognitions?wait=60s" >"$work/t.txt"
  jq -r --arg t "$(cat "$work/t.txt")" '"\($t | tonumber * 1000)\t\(.recognition_ms)"' "$work/one.json" >>"$work/seq.tsv"
done
profile_wait
overhead=$(jq -R -s '
  split("\n") | map(select(length > 0) | split("\t") | map(tonumber)) |
  {n: length,
   e2e: (map(.[0]) | sort), rec: (map(.[1]) | sort), over: (map(.[0] - .[1]) | sort)} |
  {n, e2e_p50: .e2e[(.n * 0.5 | floor)], rec_p50: .rec[(.n * 0.5 | floor)],
   over_p50: .over[(.n * 0.5 | floor)], over_p95: .over[(.n * 0.95 | floor)], over_mean: (.over | add / length)}' "$work/seq.tsv")

kill -TERM "$local_pid"
wait "$local_pid" || true
local_pid=

reference after
tail -n +2 "$dataset/classification_1000.csv" | tr -d '\r' | tr ',' ':' | sort >"$work/want.txt"
agree=$(sort "$work/recognize.txt" | comm -12 - "$work/want.txt" | wc -l)

local out
out=$(jq -n -r --argjson s "$(cat "$work/submit.json")" --argjson r "$rec_stats" --argjson o "$overhead" \
  --argjson rb "$(cat "$work/ref-before.wall")" --argjson ra "$(cat "$work/ref-after.wall")" \
  --argjson cb "$(cut -d' ' -f1 "$work/ref-before.ru")" --argjson ca "$(cut -d' ' -f1 "$work/ref-after.ru")" \
  --argjson refsw "$(cat "$work/ref-before.ru" "$work/ref-after.ru" | awk '{ s += $2 + $3 } END { print s / 2 }')" \
  --argjson websw "$((websw1 - websw0))" --argjson workerssw "$((workerssw1 - workerssw0))" --argjson hop "$hop_us" \
  --argjson cpu "$(awk -v a="$web0" -v b="$web1" -v c="$workers0" -v d="$workers1" 'BEGIN {print b - a + d - c}')" \
  --argjson webcpu "$(awk -v a="$web0" -v b="$web1" 'BEGIN {print b - a}')" \
  --argjson clientcpu "$client_cpu" --argjson floor "$floor" --argjson create "$create_us" \
  --arg agree "$agree" --arg workers "$workers" --arg cpus "$(nproc)" --arg conc "$concurrency" '
  (($rb + $ra) / 2) as $rs | (1000 / $rs) as $rt | (($cb + $ca) / 2000) as $rc | ($cpu / $s.requests) as $sc |
  "facecloud local, \($workers) workers on \($cpus) CPUs, course workload (1000 requests, concurrency \($conc))",
  "  answers: \($s.correct)/\($s.requests) correct, \($s.failed) failed",
  "  duration: \($s.duration_seconds | . * 100 | round / 100) s   throughput: \($s.throughput_per_second | . * 10 | round / 10) req/s",
  "  latency: p50 \($s.p50_ms | round) ms   p95 \($s.p95_ms | round) ms   p99 \($s.p99_ms | round) ms",
  "  engine time per request (stored results): mean \($r.mean | . * 10 | round / 10) ms   p50 \($r.p50 | . * 10 | round / 10) ms   p95 \($r.p95 | . * 10 | round / 10) ms",
  "service overhead, \($o.n) requests one at a time (end-to-end minus engine time):",
  "  end-to-end p50 \($o.e2e_p50 | . * 10 | round / 10) ms   engine p50 \($o.rec_p50 | . * 10 | round / 10) ms",
  "  overhead p50 \($o.over_p50 | . * 10 | round / 10) ms   p95 \($o.over_p95 | . * 10 | round / 10) ms   mean \($o.over_mean | . * 10 | round / 10) ms",
  "  of which the HTTP exchange itself (a new connection, curl to GET /healthz) p50 \($floor | . * 100 | round / 100) ms",
  "reference: facecloud recognize, same 1000 images, one process: \($rb | . * 100 | round / 100) s before, \($ra | . * 100 | round / 100) s after: \($rt | . * 10 | round / 10) img/s, \($agree)/1000 agree",
  "ratio (local throughput / recognize throughput): \($s.throughput_per_second / $rt | . * 100 | round / 100)",
  "CPU per request: service (web agent and workers) \($sc * 1000 | . * 10 | round / 10) ms, engine alone \($rc * 1000 | . * 10 | round / 10) ms: ratio \($rc / $sc | . * 100 | round / 100)",
  "  of the service: web agent \($webcpu / $s.requests * 1000 | . * 10 | round / 10) ms, workers \(($cpu - $webcpu) / $s.requests * 1000 | . * 10 | round / 10) ms; the load generator (facecloud submit) \($clientcpu / $s.requests * 1000 | . * 10 | round / 10) ms on the same cores",
  "context switches per request: web agent \($websw / $s.requests | . * 10 | round / 10), workers \($workerssw / $s.requests | . * 10 | round / 10); per image, the engine alone \($refsw / 1000 | . * 10 | round / 10)",
  "creating a file beside the store before the run: \($create) µs (tens on a settled disk, hundreds after many deletions nearby)",
  "a round trip between two processes over pipes, before the run: \($hop) µs",
  "#run " + ({ratio: ($s.throughput_per_second / $rt), cpu_ratio: ($rc / $sc), over_p50: $o.over_p50, over_p95: $o.over_p95,
    web_ms: ($webcpu / $s.requests * 1000), workers_ms: (($cpu - $webcpu) / $s.requests * 1000), engine_ms: ($rc * 1000),
    web_switches: ($websw / $s.requests), workers_switches: ($workerssw / $s.requests), engine_switches: ($refsw / 1000),
    create_us: $create, hop_us: $hop, correct: $s.correct} | tojson)')
grep -v '^#run ' <<<"$out"
sed -n 's/^#run //p' <<<"$out" >>"$work/runs.jsonl"
}

for run in $(seq "$runs"); do
  # Twice, not through tee /dev/stderr: that reopens the file and
  # truncates it when both streams go to one file.
  [ "$runs" = 1 ] || { echo "== run $run of $runs"; echo "== run $run of $runs" >&2; }
  one_run
done
[ "$runs" = 1 ] || jq -s -r '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r(d): . * d | round / d;
  . as $runs |
  "\(length) runs: lowest / median / highest",
  (["throughput ratio", "ratio", 100], ["CPU ratio", "cpu_ratio", 100], ["overhead p50 one at a time (ms)", "over_p50", 10],
   ["overhead p95 one at a time (ms)", "over_p95", 10], ["CPU per request, web agent (ms)", "web_ms", 10],
   ["CPU per request, workers (ms)", "workers_ms", 10], ["CPU per image, engine alone (ms)", "engine_ms", 10],
   ["context switches per request, web agent", "web_switches", 10], ["context switches per request, workers", "workers_switches", 10],
   ["context switches per image, engine alone", "engine_switches", 10],
   ["creating a file beside the store (µs)", "create_us", 1], ["a round trip between two processes (µs)", "hop_us", 10],
   ["answers correct (of 1000)", "correct", 1]) as [$name, $k, $d] |
  ($runs | map(.[$k])) as $v |
  "  \($name): \($v | min | r($d)) / \($v | median | r($d)) / \($v | max | r($d))"' "$work/runs.jsonl"
