#!/usr/bin/env bash
# The face evaluation: fetches the evaluation set listed in
# scripts/eval/faces.tsv into a cache outside the repository (every file
# checked against its sha256), then runs scripts/evalfaces, which prints the
# false-accept / false-reject curve, the open-set and non-face results and
# detection recall on small and frame-filling faces, before (the pipeline
# face-api runs, with the engine's former whole-image rules) and after (the
# engine as it is). docs/gallery.md has the figures and says what the sources
# are and under which licences; none of the images is in the repository.
#
#   scripts/eval-faces.sh [evalfaces flags, e.g. -svg docs/threshold-curve.svg -check]
#
# Sources (the tsv's second column):
#   deb:NAME=VERSION     a Debian package, by apt-get download (needs apt-get
#                        update once; the package is never installed), sum of
#                        the .deb pinned below
#   npm:@vladmandic/face-api@1.7.15
#                        the model package's demo photos, from the model cache
#                        (facecloud models fetch: npm pack, sha256-checked)
#   git:OWNER/REPO@COMMIT
#                        files of a public repository at a pinned commit, from
#                        $FACECLOUD_EVAL_GIT_BASE (default: GitHub's raw file
#                        host, OWNER/REPO/COMMIT/PATH beneath it) or from bare
#                        clones in $FACECLOUD_EVAL_GIT_DIR/OWNER+REPO/repo
#
# Sources that cannot be reached are left out with a note, and the figures
# are computed on the rest (FACECLOUD_EVAL_REQUIRE=all makes that an error).
# The cache is $FACECLOUD_EVAL_CACHE, else ~/.cache/facecloud/eval.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
manifest=scripts/eval/faces.tsv
cache=${FACECLOUD_EVAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facecloud/eval}
git_base=${FACECLOUD_EVAL_GIT_BASE:-https://raw.githubusercontent.com}
require=${FACECLOUD_EVAL_REQUIRE:-}

# sha256 of each Debian package (bookworm) the set takes files from.
declare -A deb_sums=(
	["python3-skimage=0.19.3-8"]=728d88c3e3440f1f3712de0805dc834d29248ff07e1eec8c0f3da07606f752f9
	["opencv-doc=4.6.0+dfsg-12"]=4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a
)

# dirof SOURCE: the cache folder of a source.
dirof() { local rest=${1#*:}; echo "$cache/${1%%:*}/${rest//\//+}"; }

check() { # check FILE SHA256
	[ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

declare -A failed=()
fail_source() { # fail_source SOURCE REASON
	if [ -z "${failed[$1]:-}" ]; then
		echo "eval-faces: left out $1: $2" >&2
		failed[$1]=1
	fi
}

fetch_deb() { # fetch_deb NAME=VERSION DIR
	local spec=$1 dir=$2 tmp
	tmp=$(mktemp -d)
	local sum=${deb_sums[$spec]:-}
	if [ -z "$sum" ]; then
		rm -rf "$tmp"
		fail_source "deb:$spec" "no pinned sum for the package"
		return 1
	fi
	if ! (cd "$tmp" && apt-get download -qq "$spec" >/dev/null 2>&1); then
		rm -rf "$tmp"
		fail_source "deb:$spec" "apt-get download failed (run apt-get update?)"
		return 1
	fi
	local deb
	deb=$(ls "$tmp"/*.deb)
	if ! check "$deb" "$sum"; then
		rm -rf "$tmp"
		fail_source "deb:$spec" "the package's sha256 differs from the pinned one"
		return 1
	fi
	mkdir -p "$dir"
	dpkg-deb -x "$deb" "$dir"
	rm -rf "$tmp"
}

fetch_git() { # fetch_git OWNER/REPO@COMMIT PATH DEST
	local repo=${1%@*} commit=${1#*@}
	mkdir -p "$(dirname "$3")"
	if [ -n "${FACECLOUD_EVAL_GIT_DIR:-}" ]; then
		git --git-dir="$FACECLOUD_EVAL_GIT_DIR/${repo/\//+}/repo" show "$commit:$2" >"$3.part" 2>/dev/null && mv "$3.part" "$3"
	else
		curl -fsSL --retry 2 -o "$3.part" "$git_base/$repo/$commit/$2" 2>/dev/null && mv "$3.part" "$3"
	fi
}

# Make sure the model cache (and its demo photos) is there.
go run ./agents/cmd/facecloud models fetch >/dev/null
models_dir=$(go run ./agents/cmd/facecloud models path 2>/dev/null)

have=0 missing=0
while IFS=$'\t' read -r kind source label path sum; do
	case $kind in '#'* | '') continue ;; esac
	dir=$(dirof "$source")
	file=$dir/$path
	check "$file" "$sum" && { have=$((have + 1)); continue; }
	[ -n "${failed[$source]:-}" ] && { missing=$((missing + 1)); continue; }
	case $source in
	deb:*) fetch_deb "${source#deb:}" "$dir" || true ;;
	npm:@vladmandic/face-api@1.7.15)
		mkdir -p "$(dirname "$file")"
		cp "$models_dir/$path" "$file" 2>/dev/null || fail_source "$source" "not in the model cache $models_dir (facecloud models fetch)"
		;;
	git:*) fetch_git "${source#git:}" "$path" "$file" || fail_source "$source" "could not fetch $path" ;;
	*) fail_source "$source" "unknown kind of source" ;;
	esac
	if check "$file" "$sum"; then
		have=$((have + 1))
	else
		[ -f "$file" ] && fail_source "$source" "$path has another sha256 than the pinned one"
		rm -f "$file"
		missing=$((missing + 1))
	fi
done <"$manifest"
echo "eval-faces: $have files in $cache, $missing left out" >&2
if [ "$require" = all ] && [ "$missing" -gt 0 ]; then
	echo "eval-faces: FACECLOUD_EVAL_REQUIRE=all and $missing files are missing" >&2
	exit 1
fi

dataset=${FACECLOUD_DATASET:-$root/../shared/datasets/cse546}
exec go run ./scripts/evalfaces -manifest "$manifest" -cache "$cache" -dataset "$dataset" -models "$models_dir" "$@"
