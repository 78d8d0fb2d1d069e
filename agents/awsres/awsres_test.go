package awsres

import (
	"strings"
	"testing"
)

// TestReplyPrefixOwnsNoOtherQueue checks that the stack's own queues lie
// outside the web hosts' reply queue prefix: the acting scaler deletes
// queues under it that nobody touched for the reply expiry, and the web
// role may delete any of them.
func TestReplyPrefixOwnsNoOtherQueue(t *testing.T) {
	for name, tc := range map[string]struct{ preset, prefix string }{
		"default": {PresetDefault, "facecloud-dev"},
		"course":  {PresetCourse, "1225754101"},
	} {
		t.Run(name, func(t *testing.T) {
			n, err := NewNames(tc.preset, tc.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if n.ReplyQueuePrefix == "" {
				t.Fatal("no reply queue prefix")
			}
			for _, q := range []string{n.RequestQueue, n.DeadLetterQueue, n.ResponseQueue} {
				if strings.HasPrefix(q, n.ReplyQueuePrefix) {
					t.Errorf("queue %s lies under the reply queue prefix %s", q, n.ReplyQueuePrefix)
				}
			}
		})
	}
}
