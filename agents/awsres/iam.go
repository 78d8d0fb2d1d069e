package awsres

import "slices"

// ProtectFromScaleIn is the worker group's NewInstancesProtectedFromScaleIn:
// lowering desired capacity must never terminate a busy worker; idle workers
// retire themselves (TerminateInstanceInAutoScalingGroup).
const ProtectFromScaleIn = true

// Resource names a kind of resource an IAM statement is about; the stack
// turns it into the deployment's ARN(s).
type Resource string

// The resources the agents touch.
const (
	RequestQueue Resource = "request-queue"
	// DeadLetterQueue is the request queue's dead-letter queue.
	DeadLetterQueue Resource = "dead-letter-queue"
	ReplyQueue      Resource = "reply-queue"
	// InputObjects and OutputObjects are the objects in a bucket
	// (arn:aws:s3:::BUCKET/*); InputBucket and OutputBucket the bucket itself
	// (arn:aws:s3:::BUCKET), which s3:ListBucket needs.
	InputObjects  Resource = "input-objects"
	OutputObjects Resource = "output-objects"
	InputBucket   Resource = "input-bucket"
	OutputBucket  Resource = "output-bucket"
	WorkerGroup   Resource = "worker-group"
	// KeyObjects are the API keys' records and last uses in the gallery
	// (output) store: arn:aws:s3:::OUTPUT/keys/* and .../keyuse/*.
	KeyObjects Resource = "key-objects"
	// GalleryObjects are the collections' snapshots and logs in the output
	// store: arn:aws:s3:::OUTPUT/collections/* (gallery.CollectionsPrefix).
	GalleryObjects Resource = "gallery-objects"
	// StatusObjects are the web hosts' and the acting scaler's status
	// reports in the output store, read by the console and facecloud
	// status: arn:aws:s3:::OUTPUT/status/* (status.Prefix).
	StatusObjects Resource = "status-objects"
	// AnyResource is "*", for actions IAM cannot limit to a resource
	// (autoscaling:Describe*).
	AnyResource Resource = "*"
)

// Grant is one IAM statement an agent needs: Actions on Resource.
type Grant struct {
	Resource Resource
	Actions  []string
}

// Queue actions every user of a queue needs: the adapter reads the queue's
// size limit (and the scaler its depth) through GetQueueAttributes.
var (
	queueProducer = []string{"sqs:SendMessage", "sqs:GetQueueAttributes"}
	queueConsumer = []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}
)

// WebActions are what the web agent does: store inputs, send requests,
// receive replies, read results, and check that an input is there (a
// pending request, /readyz: HeadObject needs s3:GetObject, and s3:ListBucket
// makes a missing object a 404 rather than a 403); erase inputs, results,
// answer objects and gallery entries (DELETE /v1/recognitions/{id},
// /v1/gallery/{person}); create and revoke API keys through /v1/keys and
// record when each key was last used; append a deletion to a collection's
// log (erasure of a face or a person); write its status report.
// The web agent never extends a reply's visibility (it deletes each reply
// it reads), so it has no sqs:ChangeMessageVisibility.
var WebActions = []Grant{
	{Resource: RequestQueue, Actions: queueProducer},
	{Resource: ReplyQueue, Actions: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}},
	{Resource: InputObjects, Actions: []string{"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}},
	{Resource: InputBucket, Actions: []string{"s3:ListBucket"}},
	{Resource: OutputObjects, Actions: []string{"s3:GetObject", "s3:DeleteObject"}},
	{Resource: OutputBucket, Actions: []string{"s3:ListBucket"}},
	{Resource: KeyObjects, Actions: []string{"s3:PutObject"}},
	{Resource: GalleryObjects, Actions: []string{"s3:PutObject"}},
	{Resource: StatusObjects, Actions: []string{"s3:PutObject"}},
}

// WorkerActions are what a worker does: receive requests (and extend their
// visibility while working), read inputs, write results and gallery entries,
// list the gallery, send replies, and retire its own instance.
var WorkerActions = []Grant{
	{Resource: RequestQueue, Actions: queueConsumer},
	{Resource: ReplyQueue, Actions: queueProducer},
	{Resource: InputObjects, Actions: []string{"s3:GetObject"}},
	{Resource: InputBucket, Actions: []string{"s3:ListBucket"}},
	{Resource: OutputObjects, Actions: []string{"s3:GetObject", "s3:PutObject"}},
	{Resource: OutputBucket, Actions: []string{"s3:ListBucket"}},
	{Resource: AnyResource, Actions: []string{"autoscaling:DescribeAutoScalingGroups"}},
	{Resource: WorkerGroup, Actions: []string{"autoscaling:TerminateInstanceInAutoScalingGroup"}},
}

// ScalerActions are what the scaler does: read the request queue's depth
// and the group's size, and set the group's desired capacity; read the
// dead-letter queue's depth for its status report and metric; and compact
// the collections' logs into snapshots (list, read, write the new
// snapshot, delete what it replaces); write its status report.
var ScalerActions = []Grant{
	{Resource: RequestQueue, Actions: []string{"sqs:GetQueueAttributes"}},
	{Resource: DeadLetterQueue, Actions: []string{"sqs:GetQueueAttributes"}},
	{Resource: AnyResource, Actions: []string{"autoscaling:DescribeAutoScalingGroups"}},
	{Resource: WorkerGroup, Actions: []string{"autoscaling:SetDesiredCapacity"}},
	{Resource: GalleryObjects, Actions: []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}},
	{Resource: OutputBucket, Actions: []string{"s3:ListBucket"}},
	{Resource: StatusObjects, Actions: []string{"s3:PutObject"}},
}

// KMSActions are needed in addition on a bucket's KMS key when stores write
// with SSE "aws:kms" and a customer managed key (SSE-S3 and SQS managed SSE
// need none).
var KMSActions = []string{"kms:GenerateDataKey", "kms:Decrypt"}

// The resources of a web tier of several hosts, which the stack creates
// when it runs a web group: the hosts' own reply queues (named
// Names.ReplyQueuePrefix + host + tag, created and removed by the hosts
// themselves) and the record the scalers elect the acting one through.
const (
	// HostReplyQueues are the queues named by the reply queue prefix:
	// arn:aws:sqs:REGION:ACCOUNT:<ReplyQueuePrefix>*.
	HostReplyQueues Resource = "host-reply-queues"
	// ScalerLease is the lease object in the output bucket:
	// arn:aws:s3:::<OutputBucket>/leases/*.
	ScalerLease Resource = "scaler-lease"
)

// ScalerLeaseKey is where in the output bucket the scalers' lease lives.
const ScalerLeaseKey = "leases/scaler"

// HostReplyWebActions are what a web agent with --reply-prefix does on its
// own reply queue, in place of WebActions' grant on ReplyQueue: create it
// (with its touched tag, which needs sqs:TagQueue too), touch it, receive
// and delete replies (DeleteMessageBatch is sqs:DeleteMessage), read its
// attributes, remove it at a clean stop.
var HostReplyWebActions = []Grant{
	{Resource: HostReplyQueues, Actions: []string{"sqs:CreateQueue", "sqs:TagQueue", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:DeleteQueue"}},
}

// HostReplyWorkerActions are what a worker with --reply-prefix does on the
// web hosts' reply queues, besides WorkerActions: send replies (and read
// each queue's size limit when it first opens it).
var HostReplyWorkerActions = []Grant{
	{Resource: HostReplyQueues, Actions: queueProducer},
}

// ScalerElectionActions are what a scaler with --lease and --reply-prefix
// does besides ScalerActions: read and conditionally write the lease
// (s3:ListBucket makes a lease not yet written a 404 rather than a 403),
// list the reply queues with their touched tags and remove dead hosts'.
var ScalerElectionActions = []Grant{
	{Resource: ScalerLease, Actions: []string{"s3:GetObject", "s3:PutObject"}},
	{Resource: OutputBucket, Actions: []string{"s3:ListBucket"}},
	{Resource: HostReplyQueues, Actions: []string{"sqs:ListQueueTags", "sqs:GetQueueAttributes", "sqs:DeleteQueue"}},
	{Resource: AnyResource, Actions: []string{"sqs:ListQueues"}},
}

// WebTierWebActions are the web agent's grants on a host of a web tier
// (--reply-prefix): WebActions with HostReplyWebActions in place of the
// grant on the shared reply queue, which such a host never reads.
var WebTierWebActions = without(WebActions, ReplyQueue, HostReplyWebActions...)

// WebTierScalerActions are the scaler's grants on a host of a web tier
// (--lease, --reply-prefix): ScalerActions and ScalerElectionActions.
var WebTierScalerActions = without(ScalerActions, "", ScalerElectionActions...)

// WebTierWorkerActions are a worker's grants when the web hosts have
// reply queues of their own: WorkerActions and HostReplyWorkerActions. The
// grant on the shared reply queue stays: a request that names no host
// queue (from a web host of an earlier build, during an upgrade) is
// answered there.
var WebTierWorkerActions = without(WorkerActions, "", HostReplyWorkerActions...)

// without returns a copy of grants less the grant on drop (none when drop
// is ""), with extra merged in: actions on a resource already granted join
// that grant, so each resource has one statement.
func without(grants []Grant, drop Resource, extra ...Grant) []Grant {
	var out []Grant
	add := func(g Grant) {
		for i := range out {
			if out[i].Resource == g.Resource {
				for _, a := range g.Actions {
					if !slices.Contains(out[i].Actions, a) {
						out[i].Actions = append(out[i].Actions, a)
					}
				}
				return
			}
		}
		out = append(out, Grant{Resource: g.Resource, Actions: slices.Clone(g.Actions)})
	}
	for _, g := range grants {
		if drop == "" || g.Resource != drop {
			add(g)
		}
	}
	for _, g := range extra {
		add(g)
	}
	return out
}
