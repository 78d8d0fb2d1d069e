#!/usr/bin/env bash
# Fetches the course's dataset (ASU CSE546, MIT licence) from its public
# repository at a pinned commit, checks each file's sha256, and writes it
# where the tests look for it: $FACECLOUD_DATASET, else
# ../shared/datasets/cse546 beside the repository (or the folder given as
# the only argument). Files already there with the right sum are kept.
#
#   scripts/fetch-dataset.sh [DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}}

repo=visa-lab/CSE546-Cloud-Computing
commit=5be397502eabac2386f8b09a3d978992afa3b8a0
base=${FACECLOUD_DATASET_MIRROR:-"https://raw.githubusercontent.com/$repo/$commit"} # a mirror with the same layout may stand in

# sha256, name here, path in the course repository (URL-encoded)
files=(
	"477ef927a6fa93eec23bb477929549aa95165ce5050e44ef7f68f05b32bcd8ed face_images_1000.zip dataset/face_images_1000.zip"
	"9c937f903ddfbc1381aa1ef9e5a6c4984f38f3c4d888e2e34b379c6405eef1e0 face_images_100.zip dataset/face_images_100.zip"
	"f2d6aa7828d03cca7266df3914db0bf2ded4c57422a2f7d0e657bf411554ae90 classification_1000.csv dataset/Classification%20Results%20on%20Face%20Dataset%20(1000%20images).csv"
	"d98696646b754ce221a041f96257f3b55d3faea320583b61c173b11b4dd75ca0 classification_100.csv dataset/Classification%20Results%20on%20Face%20Dataset%20(100%20images).csv"
	"981d053b4bacdb72f3c3645d1d2961c218005dc8d63d3203f1fa24d428f43b62 LICENSE LICENSE"
)

if ! command -v curl >/dev/null 2>&1; then
	echo "fetch-dataset: curl is needed (apt-get install curl)" >&2
	exit 1
fi
mkdir -p "$dir"
for entry in "${files[@]}"; do
	read -r sum name src <<<"$entry"
	dest="$dir/$name"
	if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum --check --status; then
		continue
	fi
	tmp=$(mktemp "$dest.XXXXXX")
	if ! curl -fsSL --retry 3 -o "$tmp" "$base/$src"; then
		rm -f "$tmp"
		echo "fetch-dataset: could not download $src from $repo@$commit" >&2
		exit 1
	fi
	if ! echo "$sum  $tmp" | sha256sum --check --status; then
		rm -f "$tmp"
		echo "fetch-dataset: $src from $repo@$commit does not have sha256 $sum" >&2
		exit 1
	fi
	mv -f "$tmp" "$dest"
	echo "fetch-dataset: $dest"
done
echo "fetch-dataset: the course dataset is in $dir"
