#!/usr/bin/env bash
# Regenerates testdata/reference/ by running the reference face engine
# (face-api 1.7.15 on tfjs 4.22.0 + the WebAssembly backend, one thread).
#
#   scripts/golden.sh            write golden vectors into testdata/reference/
#   scripts/golden.sh bench      print the reference's ms per descriptor / detection as JSON
#
# The pinned packages are installed with `npm ci` into a work directory outside
# the repository ($FACECLOUD_REFERENCE_DIR, default: the user cache dir). The
# models come from the same place the Go engine uses (`facecloud models fetch`,
# $FACECLOUD_MODELS) and the faces from the course dataset ($FACECLOUD_DATASET,
# default ../shared/datasets/cse546).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-golden}
. "$root/scripts/reference/common.sh"

if [ ! -f "$models/face_recognition_model.bin" ]; then
  (cd "$root" && go run ./agents/cmd/facecloud models fetch --dir "$models") >&2
fi
install_reference

# The ten distinct course faces (test_00..test_09; the rest repeat them).
faces=$(mktemp -d)
trap 'rm -rf "$faces"' EXIT
unzip -q -j -o "$dataset/face_images_100.zip" 'face_images_100/test_0*' -d "$faces"

case "$cmd" in
golden)
  out="$root/testdata/reference"
  rm -rf "$out/pixels" "$out/golden.json"
  mkdir -p "$out"
  (cd "$work" && node golden.mjs golden --faces "$faces" --samples "$models/demo" --models "$models" --out "$out")
  ;;
bench)
  (cd "$work" && node golden.mjs bench --faces "$faces" --samples "$models/demo" --models "$models" --iterations "${ITERATIONS:-50}")
  ;;
*) echo "usage: scripts/golden.sh [golden|bench]" >&2; exit 2 ;;
esac
