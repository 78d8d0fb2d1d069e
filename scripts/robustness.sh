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
# ($FACECLOUD_REFERENCE_DIR, default: the user cache dir) by
# scripts/reference/common.sh, which scripts/golden.sh shares.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/reference/common.sh"

(cd "$root" && go run ./agents/cmd/facecloud models fetch --dir "$models") >&2
install_reference

set_dir=$(mktemp -d)
trap 'rm -rf "$set_dir"' EXIT
(cd "$root" && go run ./scripts/perturb --dataset "$dataset" --out "$set_dir")
(cd "$work" && node robustness.mjs --set "$set_dir" --models "$models" --out "$root/testdata/robustness/reference.json")
