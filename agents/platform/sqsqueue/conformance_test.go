package sqsqueue

import (
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/awsres"
	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/platform/queuetest"
)

// TestConformance holds SQS (moto's) to the Queue port's contract.
func TestConformance(t *testing.T) {
	s := awsres.DefaultQueueSettings
	s.VisibilityTimeout, s.Heartbeat, s.ReceiveWait, s.MaxReceives = 2*time.Second, time.Second, 0, 3
	queuetest.Run(t, func(t *testing.T) queuetest.Setup {
		q, dlq := motoQueues(t, s)
		return queuetest.Setup{
			Queue:       q,
			DeadLetter:  dlq,
			Visibility:  s.VisibilityTimeout,
			MaxReceives: s.MaxReceives,
			MaxBytes:    q.MaxBytes(),
			Settle:      time.Second,
			// moto accepts ChangeMessageVisibility with a superseded
			// receipt; deleted receipts are refused and checked.
			StaleExtendAccepted: true,
			// SQS standard queues are at-least-once; moto's server has been
			// seen handing one redelivery to two concurrent receivers on a
			// loaded machine.
			DuplicateDeliveries: true,
		}
	})
}

// TestFamilyConformance holds SQS (moto's) reply queue families to the
// QueueFamily port's contract.
func TestFamilyConformance(t *testing.T) {
	queuetest.RunFamily(t, func(t *testing.T) queuetest.FamilySetup {
		ep := awstest.Endpoint(t)
		names := awstest.Names(t)
		prefix := ep + "/123456789012/" + names.ReplyQueuePrefix
		f, err := OpenFamily(awstest.Config(ep), prefix, awsres.DefaultQueueSettings.HostReplyQueueAttributes())
		if err != nil {
			t.Fatal(err)
		}
		return queuetest.FamilySetup{Family: f, Prefix: f.Prefix(), Settle: time.Second}
	})
}
