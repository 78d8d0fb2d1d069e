#!/usr/bin/env bash
# Deployment rehearsal: boots what the stack ships, exactly as shipped,
# against moto with IAM enforced (e2e/rehearsal*_test.go, TestDeployRehearsal;
# docs/aws.md, "Deployment rehearsal").
#
#   scripts/rehearse.sh                      the whole rehearsal (CI runs this)
#   scripts/rehearse.sh --keep               rehearse the dev stack and leave it
#                                            running until Ctrl-C, printing the
#                                            endpoint, web URL, keys and outputs
#   scripts/rehearse.sh --keep --preset course   the same for the course preset
#
# It starts its own moto_server on a free loopback port (with AWS's managed
# policies loaded; the test turns IAM enforcement on once it has made the
# account owner's identity), and installs the AWS CLI with apt-get when none
# is on PATH (as root, else with sudo -n). It fails, saying why, when it
# cannot.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'rehearse: %s\n' "$*" >&2; exit 1; }

keep="" preset=dev
while [ $# -gt 0 ]; do
	case "$1" in
	--keep) keep=1 ;;
	--preset) shift; preset=${1:-} ;;
	--preset=*) preset=${1#--preset=} ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) die "unknown argument $1 (use --keep [--preset dev|course])" ;;
	esac
	shift
done
case "$preset" in dev | course) ;; *) die "--preset $preset: use dev or course" ;; esac

command -v moto_server >/dev/null 2>&1 || die "moto_server not found; install moto 5.2.1 with its server (pip install 'moto[server]==5.2.1')"

# The boot scripts run the AWS CLI, as on Amazon Linux. It must honour
# AWS_ENDPOINT_URL (CLI v1.29+ / v2.13+), which points it at moto.
if ! command -v aws >/dev/null 2>&1; then
	log "installing the AWS CLI (apt-get install awscli)"
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n apt-get update -qq >/dev/null && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null
	fi
	command -v aws >/dev/null 2>&1 || die "no AWS CLI and it could not be installed (apt-get install awscli needs root or sudo -n)"
fi
aws_cli=$(command -v aws)
# A pyenv shim costs a second a call; run the CLI it stands for.
if command -v pyenv >/dev/null 2>&1 && real=$(pyenv which aws 2>/dev/null); then
	aws_cli=$real
fi
version=$("$aws_cli" --version 2>&1 | head -1)
if ! python3 - "$version" <<'PY'; then
import re, sys
m = re.match(r"aws-cli/(\d+)\.(\d+)", sys.argv[1])
ok = m and ((int(m[1]) == 1 and int(m[2]) >= 29) or (int(m[1]) == 2 and int(m[2]) >= 13) or int(m[1]) > 2)
sys.exit(0 if ok else 1)
PY
	die "$version does not honour AWS_ENDPOINT_URL; the rehearsal needs AWS CLI v1.29+ or v2.13+"
fi
log "AWS CLI: $version ($aws_cli)"

moto_pid="" scratch=$(mktemp -d -t rehearse.XXXXXX)
cleanup() {
	if [ -n "$moto_pid" ]; then
		kill "$moto_pid" 2>/dev/null || true
		wait "$moto_pid" 2>/dev/null || true
	fi
	rm -rf "$scratch"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
endpoint="http://127.0.0.1:$port"
MOTO_IAM_LOAD_MANAGED_POLICIES=true moto_server -H 127.0.0.1 -p "$port" >"$scratch/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 150); do
	python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)' "$endpoint" 2>/dev/null && break
	kill -0 "$moto_pid" 2>/dev/null || { cat "$scratch/moto.log" >&2; die "moto_server exited at start"; }
	sleep 0.2
done
log "moto: $endpoint (IAM enforcement is turned on by the rehearsal)"

export FACECLOUD_REHEARSAL_ENDPOINT=$endpoint FACECLOUD_REHEARSAL_AWS_CLI=$aws_cli FACECLOUD_REQUIRE_AWS=1
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE

if [ -n "$keep" ]; then
	go test -c -o "$scratch/e2e.test" ./e2e/
	log "rehearsing the $preset stack; it stays up until Ctrl-C"
	# The test stops the hosts itself on Ctrl-C; the script waits for it.
	trap '' INT
	(cd e2e && FACECLOUD_REHEARSAL_KEEP=$preset exec "$scratch/e2e.test" -test.run '^TestDeployRehearsal$' -test.timeout 0 -test.v) || true
	exit 0
fi

# gotest NAME ARGS...: go test, recorded for scripts/test.sh's skip report
# when it runs us (it then shows only failed tests' output, so the summary
# below lists the rehearsal's lines only when it fails), plain otherwise.
if ! declare -F gotest >/dev/null; then
	gotest() {
		shift
		go test "$@"
	}
fi
t0=$SECONDS
status=0
gotest rehearsal -count=1 -timeout 40m -run '^TestDeployRehearsal$' -v ./e2e/ >"$scratch/test.log" 2>&1 || status=$?
# The summary: what ran, what was answered, the fleet, the IAM rows.
grep -E '^\s*(--- (PASS|FAIL)|rehearsal_.*\.go:[0-9]+: )' "$scratch/test.log" | grep -vE '^\s*--- (PASS|FAIL): TestDeployRehearsal/dev/iam/.*\(0\.' || true
if [ "$status" != 0 ]; then
	log "rehearsal FAILED (go test exit $status); each failure's report:"
	grep -A25 -E 'rehearsal_.*\.go:[0-9]+: .*(failed|want|not within)' "$scratch/test.log" | grep -v '"level":"DEBUG"' | head -300 >&2 || true
	log "last 80 lines:"
	tail -80 "$scratch/test.log" >&2
	cp "$scratch/test.log" "${TMPDIR:-/tmp}/rehearse-last.log" && log "the whole output: ${TMPDIR:-/tmp}/rehearse-last.log"
	exit "$status"
fi
tail -3 "$scratch/test.log"
log "rehearsal passed in $((SECONDS - t0)) s"
