package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/thumbs"
)

// Detector finds faces and their landmarks (face.Engine.Detect).
type Detector interface {
	Detect(ctx context.Context, image []byte) (face.Detection, error)
}

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
	// Detector finds the landmarks a request asks for; nil refuses such
	// requests.
	Detector Detector
	// Limits bound decoding an enrolment image again for its thumbnail
	// (the describer's limits); zero means imageio.DefaultLimits.
	Limits imageio.Limits
	Logger *slog.Logger
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
	if err := f.thumbnail(ctx, id, image, rec.Faces[0].Box); err != nil {
		return Recognition{}, err
	}
	if _, err := f.Gallery.Refresh(ctx); err != nil && f.Logger != nil {
		f.Logger.Warn("gallery refresh after enrolment failed; the periodic refresh will retry", "err", err)
	}
	b := rec.Faces[0].Box
	enrolled := job.Face{Box: job.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}, Score: rec.Faces[0].Score, Name: person, Quality: rec.Faces[0].Quality.Level.String()}
	return Recognition{Width: rec.Width, Height: rec.Height, Faces: []job.Face{enrolled}, Elapsed: engineTime(rec.Timings)}, nil
}

// thumbnail stores the enrolled face's thumbnail beside the gallery entry.
// An image that does not decode again (it just did) only loses its
// thumbnail; a store that fails is retried like the entry.
func (f *FaceRecognizer) thumbnail(ctx context.Context, id string, image []byte, b face.Box) error {
	lim := f.Limits
	if lim == (imageio.Limits{}) {
		lim = imageio.DefaultLimits
	}
	jpg, err := thumbs.FromImage(image, job.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}, lim)
	if err != nil {
		if f.Logger != nil {
			f.Logger.Warn("no thumbnail for an enrolled face", "id", id, "err", err)
		}
		return nil
	}
	if err := thumbs.Put(ctx, f.Store, id, jpg); err != nil {
		return Retryable(err)
	}
	return nil
}

// Landmarks finds the landmarks of the recognised faces: the detector runs
// again with the landmark net and each face takes the points of the
// detection whose box it shares. A face described whole because the
// detector found none gets none.
func (f *FaceRecognizer) Landmarks(ctx context.Context, image []byte, faces []job.Face) error {
	if f.Detector == nil {
		return errNoLandmarks
	}
	d, err := f.Detector.Detect(ctx, image)
	if err != nil {
		return err
	}
	for i := range faces {
		fb := faces[i].Box
		best, at := 0.5, -1
		for j, det := range d.Faces {
			if iou := face.IoU(face.Box{X: fb.X, Y: fb.Y, W: fb.W, H: fb.H}, det.Box); iou > best {
				best, at = iou, j
			}
		}
		if at < 0 {
			continue
		}
		pts := make([]job.Point, len(d.Faces[at].Landmarks))
		for k, p := range d.Faces[at].Landmarks {
			pts[k] = job.Point{X: p.X, Y: p.Y}
		}
		faces[i].Landmarks = pts
	}
	return nil
}

func engineTime(t face.Timings) time.Duration { return t.Decode + t.Detect + t.Describe }
