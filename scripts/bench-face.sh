#!/usr/bin/env bash
# Prints the Go face engine's and the reference's (face-api 1.7.15 on
# tfjs-backend-wasm, one thread) time per descriptor and per detection side by
# side, on the same images, with the ratio Go / reference. Both run on one
# core in the same invocation; wall time and process CPU time are shown, the
# latter being steadier on a busy machine.
#
# The Go side runs once per kernel set (avx512, avx2, neon; see
# docs/face-engine.md): by default every set this machine offers except the
# portable one, so an AVX-512 machine also shows its AVX2 path.
#
#   scripts/bench-face.sh            (BENCHTIME=50x ITERATIONS=50 to change)
#   KERNELS="avx2 portable" scripts/bench-face.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
benchtime=${BENCHTIME:-50x}

gobench() { # gobench KERNEL (empty: the default)
	echo "Go (go test -bench, GOMAXPROCS=1, kernel ${1:-default}) ..." >&2
	FACECLOUD_KERNEL=$1 go test -v -run '^$' -bench 'Benchmark(Describe|Detect)$' -cpu 1 -benchtime "$benchtime" ./agents/face/
}
declare -A go_out
kernels=${KERNELS:-}
if [ -z "$kernels" ]; then
	out=$(gobench "")
	kernels=$(echo "$out" | sed -n 's/.*kernel [a-z0-9]* of: //p' | head -1)
	kernels=${kernels% portable}
	go_out[$(echo "$out" | sed -n 's/.*kernel \([a-z0-9]*\) of: .*/\1/p' | head -1)]=$out
fi
for k in $kernels; do
	[ -n "${go_out[$k]:-}" ] || go_out[$k]=$(gobench "$k")
done
echo "reference (node, tfjs-backend-wasm, 1 thread) ..." >&2
ref_out=$(ITERATIONS=${ITERATIONS:-50} scripts/golden.sh bench | tail -1)

metric() { # metric KERNEL BENCHNAME UNIT
	echo "${go_out[$1]}" | awk -v b="$2" -v u="$3" '$1 ~ "^"b { for (i = 2; i < NF; i++) if ($(i+1) == u) print $i }'
}
ref() { # ref KEY
	echo "$ref_out" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"
}

printf '%-26s %-9s %9s %13s %8s\n' "measure" "kernel" "Go ms" "reference ms" "Go/ref"
row() {
	awk -v n="$1" -v k="$2" -v g="$3" -v r="$4" 'BEGIN { printf "%-26s %-9s %9.2f %13.2f %8.2f\n", n, k, g, r, g / r }'
}
for k in $kernels; do
	row "descriptor (wall)" "$k" "$(metric "$k" BenchmarkDescribe ms/descriptor)" "$(ref describeMs)"
	row "descriptor (CPU)" "$k" "$(metric "$k" BenchmarkDescribe cpu-ms/descriptor)" "$(ref describeCpuMs)"
	row "detection 416 (wall)" "$k" "$(metric "$k" BenchmarkDetect ms/detection)" "$(ref detectMs)"
	row "detection 416 (CPU)" "$k" "$(metric "$k" BenchmarkDetect cpu-ms/detection)" "$(ref detectCpuMs)"
done

# The whole pipeline per image, before (face-api's one detector pass; a face
# crop described whole, unchecked) and after (detection pyramid, crop check).
echo "pipeline per image, before / after (go test -bench BenchmarkPipeline, GOMAXPROCS=1) ..." >&2
pipe=$(go test -run '^$' -bench 'BenchmarkPipeline$' -cpu 1 -benchtime "$benchtime" ./agents/face/)
printf '\n%-26s %12s %12s %8s\n' "image" "before ms" "after ms" "ratio"
for in in crop64 photo photo2400; do
	b=$(echo "$pipe" | awk -v n="BenchmarkPipeline/$in/before" '$1 == n { for (i = 2; i < NF; i++) if ($(i+1) == "cpu-ms/image") print $i }')
	a=$(echo "$pipe" | awk -v n="BenchmarkPipeline/$in/after" '$1 == n { for (i = 2; i < NF; i++) if ($(i+1) == "cpu-ms/image") print $i }')
	awk -v n="$in (CPU)" -v b="$b" -v a="$a" 'BEGIN { printf "%-26s %12.2f %12.2f %8.2f\n", n, b, a, a / b }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
