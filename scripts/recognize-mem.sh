#!/usr/bin/env bash
# Measures peak memory (max RSS) and wall time of `facecloud recognize` on the
# course's 1000 requests, with the gallery enrolled from its 100 labelled
# images, and checks the answers against classification_1000.csv.
#
#   scripts/recognize-mem.sh            uses ../shared/datasets/cse546 ($FACECLOUD_DATASET)
#
# GNU time (/usr/bin/time -v) is installed with apt-get when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dataset=${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}
[ -f "$dataset/face_images_1000.zip" ] || { echo "recognize-mem.sh: no course dataset at $dataset (set FACECLOUD_DATASET)" >&2; exit 1; }

if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "recognize-mem.sh: installing GNU time (apt-get)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  else
    echo "recognize-mem.sh: /usr/bin/time is missing; install the 'time' package" >&2
    exit 1
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/facecloud" ./agents/cmd/facecloud)
"$work/facecloud" models fetch >&2
unzip -q "$dataset/face_images_100.zip" -d "$work"
unzip -q "$dataset/face_images_1000.zip" -d "$work"
"$work/facecloud" enroll --data "$work/data" --images "$work/face_images_100" \
  --labels "$dataset/classification_100.csv" >/dev/null

/usr/bin/time -v -o "$work/time.txt" "$work/facecloud" recognize --data "$work/data" "$work/face_images_1000" >"$work/answers.txt"

tail -n +2 "$dataset/classification_1000.csv" | tr -d '\r' | tr ',' ':' | sort >"$work/want.txt"
agree=$(sort "$work/answers.txt" | comm -12 - "$work/want.txt" | wc -l)
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\) time/ {print $2}' "$work/time.txt")
cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u+s}' "$work/time.txt")
printf 'facecloud recognize, 1000 images, GOMAXPROCS=%s\n' "$(nproc)"
printf '  answers agreeing with classification_1000.csv: %d/1000\n' "$agree"
awk -v k="$rss_kb" 'BEGIN {printf "  max RSS: %d KiB (%.1f MiB)\n", k, k / 1024}'
printf '  wall time: %s   CPU time: %s s\n' "$wall" "$cpu"
