#!/bin/bash
# worker-gate: waits until the Auto Scaling group puts this instance in
# service. An instance launched into the warm pool boots once to fetch its
# artifacts and is then stopped; its worker must not take jobs meanwhile.
# Outside a group (no lifecycle state in the metadata) it lets the worker
# start at once.
set -uo pipefail

imds=http://169.254.169.254/latest
while :; do
	token=$(curl -sf -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
	state=$(curl -sf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/autoscaling/target-lifecycle-state")
	case "$state" in
	InService | "") exit 0 ;;
	esac
	sleep 5
done
