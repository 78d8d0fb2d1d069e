#!/bin/bash
# fetch-artifacts BUCKET REGION MANIFEST
#
# Installs the files a manifest names from the artifacts bucket. Each line is
# "sha256 key destination mode". A file already in place with the right sum
# is kept (the worker AMI bakes in the model files), so this runs on every
# boot and only downloads what changed. Every download is checked against its
# sum before it replaces anything.
#
# A download that fails is tried again, waiting 2, 4, 8 ... up to 30 s
# between tries, until FACECLOUD_FETCH_DEADLINE seconds (default 1800) have
# passed since the start: a bucket or network that is briefly unreachable at
# boot, or a role whose grants are still propagating, delays the host
# instead of leaving it without its agent. A file whose content does not
# match its sum fails at once: trying again cannot fix it.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: fetch-artifacts BUCKET REGION MANIFEST" >&2
	exit 2
fi
bucket=$1 region=$2 manifest=$3
deadline=$((SECONDS + ${FACECLOUD_FETCH_DEADLINE:-1800}))
max_wait=${FACECLOUD_FETCH_MAX_WAIT:-30}

while read -r sum key dest mode; do
	[ -n "${sum:-}" ] || continue
	if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum --check --status; then
		continue
	fi
	install -d -m 0755 "$(dirname "$dest")"
	tmp=$(mktemp "$dest.XXXXXX")
	wait=$((max_wait < 2 ? max_wait : 2)) try=1
	until aws s3 cp --only-show-errors --region "$region" "s3://$bucket/$key" "$tmp"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "fetch-artifacts: s3://$bucket/$key: download failed $try times; giving up" >&2
			rm -f "$tmp"
			exit 1
		fi
		echo "fetch-artifacts: s3://$bucket/$key: download failed (try $try); again in ${wait}s" >&2
		sleep "$wait"
		try=$((try + 1)) wait=$((wait * 2))
		[ "$wait" -le "$max_wait" ] || wait=$max_wait
	done
	if ! echo "$sum  $tmp" | sha256sum --check --status; then
		echo "fetch-artifacts: s3://$bucket/$key: sha256 is not $sum" >&2
		rm -f "$tmp"
		exit 1
	fi
	chmod "$mode" "$tmp"
	mv -f "$tmp" "$dest"
	echo "fetch-artifacts: installed $dest ($sum)"
done <"$manifest"
