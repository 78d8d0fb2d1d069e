#!/usr/bin/env bash
# Runs every test of the project: vet, unit and end-to-end tests (local system
# and, through scripts/test-aws.sh, everything AWS-backed against moto's
# server), the face engine's reference comparison once more on the portable
# kernels that arm64 runs, and a short fuzz run of image decoding. It installs
# what the tests need that a fresh machine lacks (the face model via npm,
# Chromium via apt-get when run as root) and starts moto itself.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# Chromium drives the upload-page test; install it when we can.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	log "installing chromium (apt-get)"
	apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

log "gofmt and go vet"
unformatted=$(gofmt -l agents stack e2e images scripts)
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

log "face model (npm pack, sha256-checked, cached)"
go run ./agents/cmd/facecloud models fetch

log "go test (local system; AWS-backed tests run below against moto)"
go test -count=1 -timeout 45m ./...

log "face engine on the portable kernels (what arm64 / Graviton runs)"
go test -count=1 -short -tags purego ./agents/face/...

log "AWS-backed tests against moto"
scripts/test-aws.sh

# Deployment rehearsal: what the stack ships, booted as shipped against moto with IAM enforced.
scripts/rehearse.sh

log "fuzz image decoding briefly"
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 20s ./agents/imageio/
