package sqsqueue

import (
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/awsres"
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
			Unsupported: map[string]string{
				"StaleReceipt": "moto accepts ChangeMessageVisibility with a receipt superseded by a later delivery, " +
					"so an Extend with it cannot fail there; deleted receipts are checked in TestMotoRoundTripAndRedrive",
				"CancelDuringReceive": "a cancelled long poll goes on inside moto until its wait ends and takes the " +
					"message the next subtest sends; cancellation is checked in TestMotoCancelDuringLongPoll",
			},
		}
	})
}
