#!/bin/bash
# fetch-artifacts BUCKET REGION MANIFEST
#
# Installs the files a manifest names from the artifacts bucket. Each line is
# "sha256 key destination mode". A file already in place with the right sum
# is kept (the worker AMI bakes in the model files), so this runs on every
# boot and only downloads what changed. Every download is checked against its
# sum before it replaces anything.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: fetch-artifacts BUCKET REGION MANIFEST" >&2
	exit 2
fi
bucket=$1 region=$2 manifest=$3

while read -r sum key dest mode; do
	[ -n "${sum:-}" ] || continue
	if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum --check --status; then
		continue
	fi
	install -d -m 0755 "$(dirname "$dest")"
	tmp=$(mktemp "$dest.XXXXXX")
	for try in 1 2 3 4 5; do
		if aws s3 cp --only-show-errors --region "$region" "s3://$bucket/$key" "$tmp"; then
			break
		fi
		if [ "$try" = 5 ]; then
			echo "fetch-artifacts: s3://$bucket/$key: download failed 5 times" >&2
			rm -f "$tmp"
			exit 1
		fi
		sleep $((try * 2))
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
