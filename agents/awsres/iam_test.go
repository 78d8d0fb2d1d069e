package awsres

import (
	"strings"
	"testing"
)

// TestGrantsFitTheirResources checks each grant's actions belong to the
// service that owns its resource, so the stack never builds a policy IAM
// would reject or that grants nothing.
func TestGrantsFitTheirResources(t *testing.T) {
	service := map[Resource]string{
		RequestQueue: "sqs:", DeadLetterQueue: "sqs:", ReplyQueue: "sqs:",
		InputObjects: "s3:", OutputObjects: "s3:", InputBucket: "s3:", OutputBucket: "s3:",
		WorkerGroup: "autoscaling:", AnyResource: "autoscaling:",
		HostReplyQueues: "sqs:", ScalerLease: "s3:", KeyObjects: "s3:", GalleryObjects: "s3:", StatusObjects: "s3:",
	}
	// Listing actions IAM cannot limit to a resource.
	anyOK := map[string]bool{"sqs:ListQueues": true}
	bucketOnly := map[string]bool{"s3:ListBucket": true}
	for name, grants := range map[string][]Grant{"web": WebActions, "worker": WorkerActions, "scaler": ScalerActions,
		"web with its own reply queue": HostReplyWebActions, "worker replying to hosts": HostReplyWorkerActions, "scaler election": ScalerElectionActions,
		"web host of a tier": WebTierWebActions, "scaler of a tier": WebTierScalerActions, "worker of a tier": WebTierWorkerActions} {
		t.Run(name, func(t *testing.T) {
			if len(grants) == 0 {
				t.Fatal("no grants")
			}
			seen := map[Resource]bool{}
			for _, g := range grants {
				prefix, ok := service[g.Resource]
				if !ok {
					t.Fatalf("grant on unknown resource %q", g.Resource)
				}
				if seen[g.Resource] {
					t.Errorf("two grants on %s; merge them", g.Resource)
				}
				seen[g.Resource] = true
				if len(g.Actions) == 0 {
					t.Errorf("grant on %s has no actions", g.Resource)
				}
				for _, a := range g.Actions {
					if !strings.HasPrefix(a, prefix) && !(g.Resource == AnyResource && anyOK[a]) {
						t.Errorf("action %s on %s, want a %s action", a, g.Resource, prefix)
					}
					isBucket := g.Resource == InputBucket || g.Resource == OutputBucket
					if prefix == "s3:" && bucketOnly[a] != isBucket {
						t.Errorf("action %s granted on %s: bucket-level actions go on the bucket, object actions on its objects", a, g.Resource)
					}
				}
			}
		})
	}
}
