#!/bin/bash
# name-instance GROUP REGION PATTERN
#
# Tags this instance Name=PATTERN with its %d replaced by the smallest n >= 1
# that no other instance of the Auto Scaling group carries, as the course's
# naming (app-tier-instance-<n>) asks. Names are labels only: two instances
# booting in the same second may pick the same n.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: name-instance GROUP REGION PATTERN" >&2
	exit 2
fi
group=$1 region=$2 pattern=$3

# The instance metadata service is AWS_EC2_METADATA_SERVICE_ENDPOINT when
# set (as for the AWS SDKs and CLI), else the instance's own.
imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds=${imds%/}/latest
token=$(curl -sf -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
self=$(curl -sf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/instance-id")

used=$(aws ec2 describe-instances --region "$region" \
	--filters "Name=tag:aws:autoscaling:groupName,Values=$group" "Name=instance-state-name,Values=pending,running,stopping,stopped" \
	--query "Reservations[].Instances[?InstanceId!='$self'][].Tags[?Key=='Name'][].Value" --output text)

n=1
while printf '%s\n' $used | grep -qxF "$(printf "$pattern" "$n")"; do
	n=$((n + 1))
done
name=$(printf "$pattern" "$n")
aws ec2 create-tags --region "$region" --resources "$self" --tags "Key=Name,Value=$name"
echo "name-instance: $self is $name"
