// Package platform holds the ports the agents run on: Queue, Store and Fleet.
// Each port is a small interface whose methods state their contract; every
// adapter (SQLite, files and child processes locally; SQS, S3 and EC2 Auto
// Scaling on AWS) is checked by the one conformance suite of its port
// (queuetest, storetest, fleettest).
package platform

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned (wrapped) when a key, message or receipt does not exist.
var ErrNotFound = errors.New("not found")

// ErrTooLarge is returned (wrapped) by Queue.Send when a body exceeds the queue's limit.
var ErrTooLarge = errors.New("message too large")

// Message is one delivery of a queued body.
type Message struct {
	// ID identifies the message across deliveries.
	ID string
	// Body is what Send was given, byte for byte.
	Body []byte
	// Receipt identifies this delivery; Delete and Extend take it. A receipt
	// from an earlier delivery of the same message is no longer valid once
	// the message has been received again.
	Receipt string
	// ReceiveCount is 1 on the first delivery and grows with each redelivery.
	ReceiveCount int
}

// Depth is a snapshot of how many messages a queue holds.
type Depth struct {
	// Visible messages are waiting to be received.
	Visible int
	// InFlight messages have been received and are neither deleted nor
	// back to visible yet.
	InFlight int
}

// Queue is an at-least-once message queue with visibility timeouts.
type Queue interface {
	// Send enqueues body. It returns an error wrapping ErrTooLarge when body
	// exceeds the queue's size limit, without enqueueing anything.
	Send(ctx context.Context, body []byte) error
	// Receive returns up to max messages (1..10, SQS's limit; other values
	// are an error, as is a negative wait), waiting up to wait for the first
	// one to arrive. It returns an empty slice and no error when none came in
	// time. Each returned message is invisible to other receivers for the
	// queue's visibility timeout, after which it is delivered again unless
	// deleted. A message received more often than the queue's redrive limit
	// is moved to the dead-letter queue instead of being delivered again.
	// Receive returns ctx.Err() promptly when ctx is done.
	Receive(ctx context.Context, max int, wait time.Duration) ([]Message, error)
	// Delete removes the message of a delivery for good. Deleting an already
	// deleted message is not an error. With a receipt from an earlier
	// delivery of a message that has since been received again, Delete
	// either fails with an error wrapping ErrNotFound and leaves the message
	// to its current holder, or (SQS) succeeds; callers treat both as "no
	// longer mine".
	Delete(ctx context.Context, receipt string) error
	// Extend makes the message of a delivery invisible for d (0..12h) from
	// now; d = 0 hands it back at once. It fails with an error wrapping
	// ErrNotFound when the receipt is no longer valid (deleted, or
	// redelivered to someone else).
	Extend(ctx context.Context, receipt string, d time.Duration) error
	// Depth reports how many messages are visible and in flight. Adapters
	// backed by a service may report approximate figures.
	Depth(ctx context.Context) (Depth, error)
	// Close releases the adapter's resources; the queue's contents stay.
	Close() error
}

// MaxBatch is the most messages one Receive returns and one DeleteBatch
// call takes (SQS's limit, which every adapter keeps).
const MaxBatch = 10

// BatchDeleter is a Queue that deletes several deliveries in one call (SQS
// DeleteMessageBatch); DeleteAll uses it when a queue has it.
type BatchDeleter interface {
	// DeleteBatch deletes the messages of up to MaxBatch deliveries, each
	// as Delete would. It returns nil when every one is deleted, else an
	// error joining one error per receipt that failed (each wrapping
	// ErrNotFound where Delete's would); the others are deleted.
	DeleteBatch(ctx context.Context, receipts []string) error
}

// Taker is a Queue that can receive and delete in one step. It suits a
// queue whose messages are worth nothing once their one consumer is gone
// (a web host's own reply queue: its waiting calls die with it), where a
// delivery kept for a second attempt buys nothing.
type Taker interface {
	// Take is Receive (the same limits, waiting and dead-lettering) that
	// also deletes the messages it returns, in the same step: each is
	// delivered at most once, and a consumer that stops after Take
	// returns loses them. ReceiveCount counts this delivery.
	Take(ctx context.Context, max int, wait time.Duration) ([]Message, error)
}

// Forwarder is a Queue that can send a body to another queue and delete a
// delivery of its own in one step: a worker's reply and the deletion of
// the request it answers. One step costs one write instead of two, and
// leaves no moment at which the reply is out but the request still
// pending (a crash there answers the request twice).
type Forwarder interface {
	// Forward sends body to `to` and deletes the delivery receipt from
	// this queue, together. When the two cannot be done as one for `to`
	// (another adapter, another file), it does neither and returns an
	// error wrapping errors.ErrUnsupported as sendErr. When the step as a
	// whole fails, neither is done and sendErr says why. Otherwise each
	// part answers as alone: sendErr wraps ErrNotFound when `to` has been
	// removed (the delivery is deleted all the same), and delErr is what
	// Delete would return (a stale receipt: the body is sent all the
	// same).
	Forward(ctx context.Context, to Queue, body []byte, receipt string) (sendErr, delErr error)
}

// ForwardReceiver is a Forwarder that can also receive its next messages
// in the same step: a worker that answers a job and is free for another
// replies, deletes the request and takes the next one in one write instead
// of two (and does not look for work while a backlog waits).
type ForwardReceiver interface {
	Forwarder
	// ForwardReceive is Forward that also receives up to max (1..MaxBatch)
	// messages of this queue, as Receive with no wait would (the same
	// delivery counts, receipts and dead-lettering), when the step as a
	// whole is done: with sendErr nil or wrapping ErrNotFound. When Forward
	// would do nothing (ErrUnsupported, or the step failed) it receives
	// nothing either.
	ForwardReceive(ctx context.Context, to Queue, body []byte, receipt string, max int) (next []Message, sendErr, delErr error)
}

// DeleteAll deletes the messages of receipts from q: in batches of
// MaxBatch when q is a BatchDeleter, else one at a time. It returns the
// errors of the receipts that failed, joined.
func DeleteAll(ctx context.Context, q Queue, receipts []string) error {
	var errs []error
	if bd, ok := q.(BatchDeleter); ok {
		for len(receipts) > 0 {
			n := min(len(receipts), MaxBatch)
			if err := bd.DeleteBatch(ctx, receipts[:n]); err != nil {
				errs = append(errs, err)
			}
			receipts = receipts[n:]
		}
		return errors.Join(errs...)
	}
	for _, r := range receipts {
		if err := q.Delete(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// QueueFamily is a set of queues that are created and removed while the
// system runs, all named under one prefix: the reply queue of each web
// host. A web host creates its queue at start, touches it while it runs
// and removes it at a clean stop; workers send replies only to addresses
// the family contains; whoever collects garbage removes the members nobody
// has touched for a while (a host that died without cleaning up).
type QueueFamily interface {
	// Create creates the member named prefix+suffix (suffix: 1..40
	// characters of A-Z, a-z, 0-9, '-' and '_') and returns it with its
	// address, the string Open, Touch, Remove and Contains take. Creating
	// an existing member returns it.
	Create(ctx context.Context, suffix string) (Queue, string, error)
	// Open returns the member at address for sending and receiving. It
	// fails with an error wrapping ErrNotFound when address is not in the
	// family (Contains is false) or the member does not exist; Send on a
	// member removed after Open fails the same way.
	Open(ctx context.Context, address string) (Queue, error)
	// Contains reports whether address names a member of this family,
	// from the address alone: the check before sending anywhere.
	Contains(address string) bool
	// Touch records that the member's owner is alive now.
	Touch(ctx context.Context, address string) error
	// Members lists the family's members with when each was last touched
	// (or created), oldest first.
	Members(ctx context.Context) ([]Member, error)
	// Remove deletes the member and its messages; a member already gone
	// is not an error.
	Remove(ctx context.Context, address string) error
	// Close releases the adapter's resources; the members stay.
	Close() error
}

// Member is one queue of a QueueFamily.
type Member struct {
	Address string
	// Touched is when the member was last touched or created.
	Touched time.Time
}

// ValidMemberSuffix checks a QueueFamily member's suffix.
func ValidMemberSuffix(s string) error {
	if len(s) < 1 || len(s) > 40 {
		return fmt.Errorf("queue name suffix %q must be 1..40 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("queue name suffix %q may hold only A-Z, a-z, 0-9, '-' and '_'", s)
		}
	}
	return nil
}
