#!/usr/bin/env bash
# Runs the whole system on this machine: builds bin/facecloud, fetches the
# face model on first use, enrols the course gallery when the course dataset
# lies beside the repository (../shared/datasets/cse546, or $FACECLOUD_DATASET),
# and starts `facecloud local`. Extra arguments go to `facecloud local`,
# e.g. scripts/run-local.sh --addr 127.0.0.1:9000 --max-workers 4
set -euo pipefail
cd "$(dirname "$0")/.."

data=${FACECLOUD_DATA:-./data}
dataset=${FACECLOUD_DATASET:-../shared/datasets/cse546}

go build -o bin/facecloud ./agents/cmd/facecloud
bin/facecloud models fetch

if [ -f "$dataset/face_images_100.zip" ] && [ -f "$dataset/classification_100.csv" ]; then
	gallery_src="$data/course-gallery"
	if [ ! -d "$gallery_src" ]; then
		mkdir -p "$gallery_src"
		python3 -m zipfile -e "$dataset/face_images_100.zip" "$gallery_src"
	fi
	images=$(dirname "$(find "$gallery_src" -name 'test_00.jpg' | head -n 1)")
	echo "enrolling the course gallery from $dataset" >&2
	bin/facecloud enroll --data "$data" --images "$images" --labels "$dataset/classification_100.csv" >/dev/null
else
	echo "no course dataset at $dataset: starting with the gallery as it is (enrol with bin/facecloud enroll or POST /v1/gallery/{person})" >&2
fi

exec bin/facecloud local --data "$data" --addr "${FACECLOUD_ADDR:-127.0.0.1:8080}" "$@"
