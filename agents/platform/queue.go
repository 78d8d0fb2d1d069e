// Package platform holds the ports the agents run on: Queue, Store and Fleet.
// Each port is a small interface whose methods state their contract; every
// adapter (SQLite, files and child processes locally; SQS, S3 and EC2 Auto
// Scaling on AWS) is checked by the one conformance suite of its port
// (queuetest, storetest, fleettest).
package platform

import (
	"context"
	"errors"
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
