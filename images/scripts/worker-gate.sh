#!/bin/bash
# worker-gate: waits until the Auto Scaling group puts this instance in
# service. An instance launched into the warm pool boots once to fetch its
# artifacts and is then stopped; its worker must not take jobs meanwhile.
# With a launch lifecycle hook (FACECLOUD_LAUNCH_HOOK, set with a warm pool)
# it first tells the group that the boot fetch is done, so the group stops
# a warm instance only once the agent and model are on disk. Outside a group
# (no lifecycle state in the metadata) it lets the worker start at once.
#
# The instance metadata service is AWS_EC2_METADATA_SERVICE_ENDPOINT when
# set (as for the AWS SDKs and CLI), else the instance's own.
set -uo pipefail

imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds=${imds%/}/latest
metadata() {
	local token
	token=$(curl -sf -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') &&
		curl -sf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"
}

if [ -n "${FACECLOUD_LAUNCH_HOOK:-}" ]; then
	self=$(metadata instance-id)
	# A start from the warm pool may have no pending action: not an error.
	aws autoscaling complete-lifecycle-action --region "$AWS_REGION" --auto-scaling-group-name "$FACECLOUD_GROUP" \
		--lifecycle-hook-name "$FACECLOUD_LAUNCH_HOOK" --instance-id "$self" --lifecycle-action-result CONTINUE ||
		echo "worker-gate: no launch action to complete for $self" >&2
fi
while :; do
	state=$(metadata autoscaling/target-lifecycle-state)
	case "$state" in
	InService | "") exit 0 ;;
	esac
	sleep 5
done
