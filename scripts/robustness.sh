#!/usr/bin/env bash
# Records the reference engine's answers on the robustness set into
# testdata/robustness/reference.json. The set (the distinct course faces and
# their mirrored, resized, brightened, darkened, JPEG-25, rotated, grayscale,
# cropped, blurred and PNG copies) is generated deterministically by
# `go run ./scripts/perturb`; the Go test (agents/perturb) regenerates it,
# checks every copy's sha256 against this file, and must be right at least as
# often as the reference.
#
# The pinned reference packages (scripts/reference/package*.json) are installed
# with `npm ci` into a work directory outside the repository
# ($FACECLOUD_REFERENCE_DIR, default: the user cache dir), as scripts/golden.sh does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}
work=${FACECLOUD_REFERENCE_DIR:-$cache/facecloud/reference}
models=${FACECLOUD_MODELS:-$cache/facecloud/face-api-1.7.15}
dataset=${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}

command -v node >/dev/null || { echo "robustness.sh: node is not installed" >&2; exit 1; }
[ -f "$dataset/face_images_100.zip" ] || { echo "robustness.sh: no course dataset at $dataset (set FACECLOUD_DATASET)" >&2; exit 1; }
(cd "$root" && go run ./agents/cmd/facecloud models fetch --dir "$models") >&2

mkdir -p "$work"
cp "$root/scripts/reference/package.json" "$root/scripts/reference/package-lock.json" "$root/scripts/reference/robustness.mjs" "$work/"
if ! cmp -s "$work/package-lock.json" "$work/node_modules/.package-lock.json.installed" 2>/dev/null; then
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$work/package-lock.json" "$work/node_modules/.package-lock.json.installed"
fi

set_dir=$(mktemp -d)
trap 'rm -rf "$set_dir"' EXIT
(cd "$root" && go run ./scripts/perturb --dataset "$dataset" --out "$set_dir")
(cd "$work" && node robustness.mjs --set "$set_dir" --models "$models" --out "$root/testdata/robustness/reference.json")
