#!/bin/bash
# report-unhealthy: marks this instance Unhealthy in its Auto Scaling group,
# which then terminates it (and launches a replacement while the desired
# count asks for one). Run by facecloud-unhealthy.service when the worker
# unit has failed for good: its boot fetch gave up, or the agent kept
# exiting with an error. Without it such an instance would pass EC2's
# health check and be paid for until the stack is destroyed.
set -euo pipefail

imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds=${imds%/}/latest
token=$(curl -sf -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
self=$(curl -sf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/instance-id")
aws autoscaling set-instance-health --region "$AWS_REGION" --instance-id "$self" \
	--health-status Unhealthy --no-should-respect-grace-period
echo "report-unhealthy: $self of $FACECLOUD_GROUP marked Unhealthy: the worker could not start"
