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
