package platform

import "context"

// Store is a durable key/value object store (files locally, S3 on AWS).
// Keys are slash-separated paths such as "inputs/<id>.jpg".
type Store interface {
	// Put writes data under key atomically: a concurrent or later Get sees
	// either the whole old object or the whole new one, never a part.
	// contentType may be empty.
	Put(ctx context.Context, key string, data []byte, contentType string) error
	// Get returns the object's bytes, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Exists reports whether key holds an object.
	Exists(ctx context.Context, key string) (bool, error)
	// List returns the keys starting with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Close releases the adapter's resources.
	Close() error
}
