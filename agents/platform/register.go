package platform

import (
	"context"
	"errors"
)

// ErrConflict is returned (wrapped) by Register.Write when the record was
// written by someone else since the version the writer read.
var ErrConflict = errors.New("written by someone else first")

// Register is one small record that several processes update by
// compare-and-swap: the lease through which the scalers of a stack elect
// the one that acts (S3 conditional writes on AWS).
type Register interface {
	// Read returns the record and its version, or an error wrapping
	// ErrNotFound when it has never been written.
	Read(ctx context.Context) (value []byte, version string, err error)
	// Write stores value if the record's version is still version ("":
	// only if there is no record yet) and returns the new version; else it
	// fails with an error wrapping ErrConflict and changes nothing. A version
	// may come back when the same bytes are written again (S3's ETag is
	// their MD5): writers put a nonce in every value.
	Write(ctx context.Context, value []byte, version string) (string, error)
	// Close releases the adapter's resources; the record stays.
	Close() error
}
