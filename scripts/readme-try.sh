#!/usr/bin/env bash
# Runs the README's "Try it" commands as a new user would paste them: in a
# fresh clone of this repository (committed files only) with the course
# dataset beside it, after starting scripts/run-local.sh there. The only
# change made to the commands is the port, when 8080 is taken. Every curl
# must get a 2xx answer and submit must find every answer right.
#
#   scripts/readme-try.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dataset=${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}
if [ ! -f "$dataset/face_images_1000.zip" ]; then
	echo "readme-try: the course dataset is not in $dataset (scripts/fetch-dataset.sh)" >&2
	exit 1
fi

work=$(mktemp -d -t facecloud-readme.XXXXXX)
local_pid=""
cleanup() {
	if [ -n "$local_pid" ] && kill -0 "$local_pid" 2>/dev/null; then
		kill -TERM "$local_pid"
		wait "$local_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

git clone -q "$root" "$work/facecloud"
mkdir -p "$work/shared/datasets"
ln -s "$(cd "$dataset" && pwd)" "$work/shared/datasets/cse546"
cd "$work/facecloud"

# The README's port, unless something else holds it.
port=8080
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
fi

echo "== scripts/run-local.sh (port $port)" >&2
FACECLOUD_ADDR=127.0.0.1:$port FACECLOUD_DATASET="$work/shared/datasets/cse546" scripts/run-local.sh >"$work/local.log" 2>&1 &
local_pid=$!
for _ in $(seq 1 600); do
	if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && [ -f data/admin.key ]; then
		break
	fi
	if ! kill -0 "$local_pid" 2>/dev/null; then
		echo "readme-try: scripts/run-local.sh exited:" >&2
		tail -30 "$work/local.log" >&2
		exit 1
	fi
	sleep 0.5
done

# The first sh block under "## Try it".
block=$(awk '/^## Try it/ {in_section=1} in_section && /^```sh/ {grab=1; next} grab && /^```/ {exit} grab {print}' README.md)
if [ -z "$block" ]; then
	echo "readme-try: no sh block under ## Try it in README.md" >&2
	exit 1
fi
block=${block//127.0.0.1:8080/127.0.0.1:$port}
echo "== the README's Try it block" >&2
printf '%s\n' "$block" >&2
# curl as pasted, but failing on an HTTP error so that a refusal fails the run.
if ! bash -euo pipefail -c "curl() { command curl -sS --fail-with-body \"\$@\"; echo; }; $block"; then
	echo "readme-try: the README's Try it commands failed; local's log:" >&2
	tail -40 "$work/local.log" >&2
	exit 1
fi
echo "== readme-try: every command of the README's Try it block worked" >&2
