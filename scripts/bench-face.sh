#!/usr/bin/env bash
# Prints the Go face engine's and the reference's (face-api 1.7.15 on
# tfjs-backend-wasm, one thread) time per descriptor and per detection side by
# side, on the same images, with the ratio Go / reference. Both run on one
# core in the same invocation; wall time and process CPU time are shown, the
# latter being steadier on a busy machine.
#
#   scripts/bench-face.sh            (BENCHTIME=50x ITERATIONS=50 to change)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
benchtime=${BENCHTIME:-50x}

echo "Go (go test -bench, GOMAXPROCS=1) ..." >&2
go_out=$(go test -run '^$' -bench 'Benchmark(Describe|Detect)$' -cpu 1 -benchtime "$benchtime" ./agents/face/)
echo "reference (node, tfjs-backend-wasm, 1 thread) ..." >&2
ref_out=$(ITERATIONS=${ITERATIONS:-50} scripts/golden.sh bench | tail -1)

metric() { # metric BENCHNAME UNIT
  echo "$go_out" | awk -v b="$1" -v u="$2" '$1 ~ "^"b { for (i = 2; i < NF; i++) if ($(i+1) == u) print $i }'
}
ref() { # ref KEY
  echo "$ref_out" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"
}

printf '%-26s %12s %12s %8s\n' "measure" "Go ms" "reference ms" "Go/ref"
row() {
  awk -v n="$1" -v g="$2" -v r="$3" 'BEGIN { printf "%-26s %12.2f %12.2f %8.2f\n", n, g, r, g / r }'
}
row "descriptor (wall)" "$(metric BenchmarkDescribe ms/descriptor)" "$(ref describeMs)"
row "descriptor (CPU)" "$(metric BenchmarkDescribe cpu-ms/descriptor)" "$(ref describeCpuMs)"
row "detection 416 (wall)" "$(metric BenchmarkDetect ms/detection)" "$(ref detectMs)"
row "detection 416 (CPU)" "$(metric BenchmarkDetect cpu-ms/detection)" "$(ref detectCpuMs)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
