package platform

import (
	"context"
	"errors"
)

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
	// [0, Max], or to [Min, Max] for a fleet with a minimum size of its own
	// (an Auto Scaling group's MinSize, procfleet's Config.Min). It returns
	// the count actually set. Workers are added by the
	// fleet; workers are removed by retiring themselves (Retirer), so a lower
	// n than Running does not stop busy workers.
	SetDesired(ctx context.Context, n int) (int, error)
	// Close releases the adapter's resources. A local fleet stops its
	// workers (SIGTERM, so they drain) before returning.
	Close() error
}

// ErrRetireRefused is returned (wrapped) by Retirer.Retire when the fleet
// keeps the worker because it is at its minimum size.
var ErrRetireRefused = errors.New("retirement refused: the fleet is at its minimum size")

// Retirer lets an idle worker leave its fleet and lower its desired count
// by one in the same step, so the fleet does not replace it.
type Retirer interface {
	// Retire takes the worker out of its fleet; on success the worker
	// exits. Retire returns an error wrapping ErrRetireRefused when the
	// fleet is at its minimum; the worker then keeps working (and may ask
	// again after its next idle period). Other errors also leave the
	// worker in the fleet.
	Retire(ctx context.Context) error
}
