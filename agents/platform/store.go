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
	// Delete removes the object under key. A key that holds no object is
	// not an error (nil), so an erasure that was interrupted can simply be
	// run again; afterwards Get fails with ErrNotFound, Exists is false
	// and List leaves the key out. Deleting a key never removes other keys,
	// including keys that have it as a prefix ("dir" leaves "dir/obj").
	Delete(ctx context.Context, key string) error
	// Close releases the adapter's resources.
	Close() error
}
