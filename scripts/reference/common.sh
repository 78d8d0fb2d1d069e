# Shared set-up of the scripts that run the reference face engine
# (scripts/golden.sh, scripts/robustness.sh); source it after setting $root
# to the repository root. It locates the work directory, models and course
# dataset (each overridable by environment), checks that node and the
# dataset are there, and defines install_reference.
cache=${XDG_CACHE_HOME:-$HOME/.cache}
work=${FACECLOUD_REFERENCE_DIR:-$cache/facecloud/reference}
models=${FACECLOUD_MODELS:-$cache/facecloud/face-api-1.7.15}
dataset=${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}

command -v node >/dev/null || { echo "${0##*/}: node is not installed" >&2; exit 1; }
[ -f "$dataset/face_images_100.zip" ] || { echo "${0##*/}: no course dataset at $dataset (set FACECLOUD_DATASET)" >&2; exit 1; }

# install_reference copies the reference scripts and the pinned package list
# into $work and runs `npm ci` there when the lock file changed since the
# last install (the packages stay outside the repository).
install_reference() {
  mkdir -p "$work"
  cp "$root/scripts/reference/package.json" "$root/scripts/reference/package-lock.json" "$root"/scripts/reference/*.mjs "$work/"
  if ! cmp -s "$work/package-lock.json" "$work/node_modules/.package-lock.json.installed" 2>/dev/null; then
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >&2)
    cp "$work/package-lock.json" "$work/node_modules/.package-lock.json.installed"
  fi
}
