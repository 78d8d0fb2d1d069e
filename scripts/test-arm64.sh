#!/usr/bin/env bash
# Runs the face engine's kernel tests and its reference comparison (the
# golden tests of agents/face) for arm64 under QEMU user-mode emulation:
# the kernel tests once (they exercise every kernel set of the build), the
# reference comparison twice, on the NEON kernels (what arm64 picks) and on
# the portable Go kernels (FACECLOUD_KERNEL=portable; the same code as a
# -tags purego build). Fails when a test fails or an expected test did not
# run. It installs Debian's qemu-user-static with apt-get when
# qemu-aarch64-static is missing (as root, or through password-less sudo).
#
# Emulation checks numbers, not speed: timings under QEMU say nothing about
# arm64 hardware. Measure an instance with `facecloud bench` instead.
#
#   scripts/test-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }
die() { echo "test-arm64.sh: $*" >&2; exit 1; }

if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		as_root=()
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root=(sudo -n)
	else
		die "qemu-aarch64-static is missing and cannot be installed: not root and no password-less sudo. Install Debian's qemu-user-static (apt-get install qemu-user-static) and run again."
	fi
	command -v apt-get >/dev/null 2>&1 || die "qemu-aarch64-static is missing and apt-get is not available to install qemu-user-static"
	log "installing qemu-user-static (apt-get)"
	"${as_root[@]}" apt-get update -qq >/dev/null
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
	command -v qemu-aarch64-static >/dev/null 2>&1 || die "qemu-user-static installed but qemu-aarch64-static is not on PATH"
fi

log "face model (npm pack, sha256-checked, cached)"
go run ./agents/cmd/facecloud models fetch >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "cross-compiling the test binaries (GOARCH=arm64)"
GOARCH=arm64 CGO_ENABLED=0 go test -c -o "$work/nn.test" ./agents/face/nn/
GOARCH=arm64 CGO_ENABLED=0 go test -c -o "$work/face.test" ./agents/face/
GOARCH=arm64 CGO_ENABLED=0 go test -c -o "$work/gallery.test" ./agents/gallery/

# emulate NAME KERNEL DIR BINARY TEST... runs BINARY under
# qemu-aarch64-static in DIR with FACECLOUD_KERNEL=KERNEL (unset when empty)
# and the given tests, and wants each of them to pass.
emulate() {
	local name=$1 kernel=$2 dir=$3 bin=$4
	shift 4
	local tests=("$@") pattern out start secs status=0
	pattern="^($(
		IFS='|'
		echo "${tests[*]}"
	))\$"
	out="$work/${name//[^a-z0-9]/-}.out"
	log "$name"
	start=$(date +%s)
	(
		cd "$dir"
		if [ -n "$kernel" ]; then export FACECLOUD_KERNEL=$kernel; else unset FACECLOUD_KERNEL; fi
		qemu-aarch64-static "$bin" -test.v -test.short -test.count=1 -test.timeout=30m -test.run "$pattern"
	) >"$out" 2>&1 || status=$?
	secs=$(($(date +%s) - start))
	if [ "$status" != 0 ] || grep -q -- '^--- FAIL' "$out"; then
		grep -E -- '^(--- FAIL|    [a-z_]+_test\.go|panic|FAIL)' "$out" | head -40 >&2 || true
		die "$name: tests failed (exit status $status)"
	fi
	for t in "${tests[@]}"; do
		grep -q -- "^--- PASS: $t " "$out" || die "$name: $t did not run"
	done
	summary+=("$(printf '%-40s %2d tests passed in %4d s' "$name:" "${#tests[@]}" "$secs")")
	while IFS= read -r line; do
		summary+=("    ${line#*_test.go:*: }")
	done < <(grep -E 'descriptors on the|worst landmark' "$out" || true)
	last=$out
}

summary=()
golden=(TestGoldenDescriptors TestGoldenDetector TestGoldenLandmarks TestGoDecodedPhotos TestGoDecodedAligned)
emulate "kernel tests, every kernel set" "" agents/face/nn "$work/nn.test" \
	TestGemm TestWinograd TestConv2D TestForwardLeakyMaxPool2 TestDepthwise3x3 TestPools TestActivations TestActivationsLong TestPick
emulate "reference comparison, NEON kernels" "" agents/face "$work/face.test" "${golden[@]}"
grep -q 'descriptors on the neon kernels' "$last" || die "the default arm64 kernels were not neon"
emulate "reference comparison, portable kernels" portable agents/face "$work/face.test" "${golden[@]}"
grep -q 'descriptors on the portable kernels' "$last" || die "FACECLOUD_KERNEL=portable did not select the portable kernels"
emulate "gallery scan, every kernel" "" agents/gallery "$work/gallery.test" \
	TestScanKernels TestQuantise TestFixedDistanceError TestSearchNearDuplicates TestSearchIsExact
grep -q 'scan kernels: \[neon portable\]' "$last" || die "the arm64 gallery scan was not neon"

log "summary (arm64 under QEMU user-mode emulation; timings are not arm64 speed)"
printf '%s\n' "${summary[@]}"
