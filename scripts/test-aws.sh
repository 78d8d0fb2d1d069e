#!/usr/bin/env bash
# Runs every AWS-backed Go test (the packages whose tests import
# agents/awsres/awstest) against moto's server: SQS, S3 and EC2 Auto Scaling
# adapters, their conformance suites, and the end-to-end run of the agents.
#
# It starts moto_server on a free loopback port, unless
# FACECLOUD_TEST_AWS_ENDPOINT already names a running one, and stops it at
# the end. It sets FACECLOUD_REQUIRE_AWS=1, which turns any AWS-backed test's
# skip into a failure: here none may be skipped. It fails if moto is missing.
#
# Extra arguments go to go test, e.g. scripts/test-aws.sh -run Moto -v
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

moto_pid=""
cleanup() {
	if [ -n "$moto_pid" ]; then
		kill "$moto_pid" 2>/dev/null || true
		wait "$moto_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

if [ -z "${FACECLOUD_TEST_AWS_ENDPOINT:-}" ]; then
	if ! command -v moto_server >/dev/null 2>&1; then
		echo "test-aws: moto_server not found; install moto 5.2.1 with its server (pip install 'moto[server]==5.2.1')" >&2
		exit 1
	fi
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
	moto_log=$(mktemp -t moto.XXXXXX.log)
	log "starting moto_server on 127.0.0.1:$port (log: $moto_log)"
	moto_server -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
	moto_pid=$!
	export FACECLOUD_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
	for _ in $(seq 1 100); do
		if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)' "$FACECLOUD_TEST_AWS_ENDPOINT" 2>/dev/null; then
			break
		fi
		if ! kill -0 "$moto_pid" 2>/dev/null; then
			echo "test-aws: moto_server exited at start:" >&2
			cat "$moto_log" >&2
			exit 1
		fi
		sleep 0.2
	done
fi
log "AWS endpoint: $FACECLOUD_TEST_AWS_ENDPOINT"

export FACECLOUD_REQUIRE_AWS=1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1

pkgs=$(go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
	awk '/ github.com\/facecloud\/facecloud\/agents\/awsres\/awstest( |$)/ {print $1}')
if [ -z "$pkgs" ]; then
	echo "test-aws: no package's tests import agents/awsres/awstest" >&2
	exit 1
fi
# The end-to-end package also holds the local system's tests, which
# scripts/test.sh runs already: only its TestAWS* tests run here.
unit=$(echo "$pkgs" | grep -v '/e2e$' || true)
e2e=$(echo "$pkgs" | grep '/e2e$' || true)
# gotest NAME ARGS...: go test, recorded for scripts/test.sh's skip report
# when it runs us (FACECLOUD_TEST_RECORD), plain otherwise.
if ! declare -F gotest >/dev/null; then
	gotest() {
		shift
		go test "$@"
	}
fi
if [ -n "$unit" ]; then
	log "packages: $(echo $unit)"
	# shellcheck disable=SC2086
	gotest aws -count=1 -p 1 -timeout 20m "$@" $unit
fi
if [ -n "$e2e" ]; then
	log "end to end against moto: $e2e"
	# shellcheck disable=SC2086
	gotest aws-e2e -count=1 -p 1 -timeout 30m -run '^TestAWS' "$@" $e2e
fi
