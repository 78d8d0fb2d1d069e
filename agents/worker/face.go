package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// FaceRecognizer is the Recognizer of a real worker: the face engine (behind
// gallery.Describer, which also decodes with limits) and a gallery kept
// current by a gallery.Reloader, so enrolments made by other workers are
// picked up without a restart.
type FaceRecognizer struct {
	// Describer decodes an image and describes its faces.
	Describer gallery.Describer
	// Gallery is the current gallery; it is refreshed after each enrolment
	// so this worker knows the new face at once.
	Gallery *gallery.Reloader
	// Store is where enrolments are written (the gallery's store).
	Store platform.Store
	// Threshold is the largest distance taken as a match.
	Threshold float64
	Logger    *slog.Logger
}

// Recognize describes image and names its faces as req asks (nearest,
// quality filter: gallery.DefaultQuality when req names none). Errors
// (undecodable, too many pixels, ...) are permanent: the same bytes fail the
// same way.
func (f *FaceRecognizer) Recognize(ctx context.Context, image []byte, req job.Request) (Recognition, error) {
	minQ, err := gallery.ParseQuality(req.Quality)
	if err != nil {
		return Recognition{}, err
	}
	rec, err := f.Describer.Describe(ctx, image)
	if err != nil {
		return Recognition{}, err
	}
	return Recognition{
		Width: rec.Width, Height: rec.Height,
		Faces:   f.Gallery.Gallery().FacesWith(rec, gallery.MatchOptions{Threshold: f.Threshold, Nearest: req.Nearest, MinQuality: minQ}),
		Elapsed: engineTime(rec.Timings),
	}, nil
}

// Enroll describes image and stores its largest face as person under id.
// Describing and validating fail permanently; writing the entry is retried.
func (f *FaceRecognizer) Enroll(ctx context.Context, id, person, source string, image []byte) (Recognition, error) {
	rec, err := f.Describer.Describe(ctx, image)
	if err != nil {
		return Recognition{}, err
	}
	if len(rec.Faces) == 0 {
		return Recognition{}, fmt.Errorf("%w to enrol in the %dx%d image", gallery.ErrNoFace, rec.Width, rec.Height)
	}
	e := gallery.Entry{V: gallery.Version, Person: person, ID: id, Source: source, Descriptor: rec.Faces[0].Descriptor, Enrolled: time.Now().UTC()}
	if err := e.Validate(); err != nil {
		return Recognition{}, err
	}
	if err := gallery.Put(ctx, f.Store, e); err != nil {
		return Recognition{}, Retryable(err)
	}
	if _, err := f.Gallery.Refresh(ctx); err != nil && f.Logger != nil {
		f.Logger.Warn("gallery refresh after enrolment failed; the periodic refresh will retry", "err", err)
	}
	b := rec.Faces[0].Box
	enrolled := job.Face{Box: job.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}, Score: rec.Faces[0].Score, Name: person, Quality: rec.Faces[0].Quality.Level.String()}
	return Recognition{Width: rec.Width, Height: rec.Height, Faces: []job.Face{enrolled}, Elapsed: engineTime(rec.Timings)}, nil
}

func engineTime(t face.Timings) time.Duration { return t.Decode + t.Detect + t.Describe }
