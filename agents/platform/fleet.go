package platform

import "context"

// FleetSize is a snapshot of a worker fleet.
type FleetSize struct {
	// Desired is the count the fleet is converging to.
	Desired int
	// Running workers are up and taking jobs.
	Running int
	// Pending workers are starting and will take jobs soon.
	Pending int
	// Max is the most workers the fleet can hold; SetDesired clamps to it.
	Max int
}

// Fleet is a set of worker processes or instances whose size the scaler sets.
type Fleet interface {
	// Size reports the fleet's current desired, running and pending counts.
	Size(ctx context.Context) (FleetSize, error)
	// SetDesired asks the fleet to converge to n workers, clamped to
	// [0, Max]. It returns the count actually set. Workers are added by the
	// fleet; workers are removed by retiring themselves (Retirer), so a lower
	// n than Running does not stop busy workers.
	SetDesired(ctx context.Context, n int) (int, error)
	// Close releases the adapter's resources. A local fleet stops its
	// workers (SIGTERM, so they drain) before returning.
	Close() error
}

// Retirer lets an idle worker leave its fleet and lower its desired count
// by one in the same step, so the fleet does not replace it.
type Retirer interface {
	Retire(ctx context.Context) error
}
