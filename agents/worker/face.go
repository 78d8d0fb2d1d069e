package worker

import (
	"context"
	"errors"
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

// Engine is the face engine as the worker uses it: decoding with limits,
// then describing or detecting. cmd/facecloud wraps face.Engine in one.
type Engine interface {
	gallery.Describer
	Detect(ctx context.Context, image []byte) (face.Detection, error)
}

// FaceRecognizer is the Recognizer of a real worker: the face engine and
// the collections, kept current by a gallery.Follower so that enrolments
// made by other workers are picked up without a restart.
type FaceRecognizer struct {
	Engine Engine
	// Gallery follows the collections; it is refreshed after each
	// enrolment so this worker knows the new face at once.
	Gallery *gallery.Follower
	// Store is where enrolments are written (the gallery's store).
	Store platform.Store
	// Threshold is the largest distance taken as a match when a request
	// does not say.
	Threshold float64
	// Limits bound decoding an enrolment image again for its thumbnail
	// (the describer's limits); zero means imageio.DefaultLimits.
	Limits imageio.Limits
	Logger *slog.Logger
}

// ErrNoFace is a request's image without the face it needs.
var ErrNoFace = gallery.ErrNoFace

// Process runs req on its images. A recognition or search names only the
// faces at or above req.Quality (gallery.DefaultQuality when it names
// none); the others are job.LowQuality. A verification whose face is below
// it is no match. Errors (undecodable, too many
// pixels, no face to enrol or verify, ...) are permanent: the same bytes
// fail the same way; only writing an enrolment is retried.
func (f *FaceRecognizer) Process(ctx context.Context, req job.Request, images [][]byte) (Recognition, error) {
	minQ, err := gallery.ParseQuality(req.Quality)
	if err != nil {
		return Recognition{}, err
	}
	threshold := f.Threshold
	if req.Threshold != 0 {
		threshold = req.Threshold
	}
	switch req.Kind {
	case job.KindDetect:
		return f.detect(ctx, images[0])
	case job.KindEnroll:
		return f.enroll(ctx, req, images[0])
	case job.KindVerify:
		return f.verify(ctx, req, images, threshold, minQ)
	}
	start := time.Now()
	rec, err := f.Engine.Describe(ctx, images[0])
	if err != nil {
		return Recognition{}, err
	}
	c, limit := collectionOf(req), 1
	if req.Kind == job.KindSearch {
		limit = max(req.Limit, 1)
	}
	out := Recognition{Width: rec.Width, Height: rec.Height, Threshold: threshold, Elapsed: engineTime(rec.Timings)}
	if len(rec.Faces) == 0 {
		return out, nil
	}
	var qs []face.Descriptor
	for _, fc := range rec.Faces {
		if fc.Quality.Level >= minQ {
			qs = append(qs, fc.Descriptor)
		}
	}
	matches := f.Gallery.View(c).Search(qs, limit, "")
	for _, fc := range rec.Faces {
		jf := job.Face{Box: box(fc.Box), Score: fc.Score, Name: job.LowQuality, Distance: -1, Quality: fc.Quality.Level.String()}
		if fc.Quality.Level < minQ {
			out.Faces = append(out.Faces, jf)
			continue
		}
		jf.Name = gallery.Unknown
		ms := matches[0]
		matches = matches[1:]
		if len(ms) > 0 {
			jf.Distance, jf.Similarity = ms[0].Distance, ms[0].Similarity
			if ms[0].Distance <= threshold || req.Nearest {
				jf.Name, jf.FaceID = ms[0].Person, ms[0].FaceID
			}
			if req.Kind == job.KindSearch {
				for _, m := range ms {
					jf.Candidates = append(jf.Candidates, job.Candidate{Person: m.Person, FaceID: m.FaceID, Distance: m.Distance, Similarity: m.Similarity})
				}
			}
		}
		out.Faces = append(out.Faces, jf)
	}
	// The engine's time and the gallery search's: all of it computing.
	out.Elapsed = time.Since(start)
	return out, nil
}

// collectionOf is the collection a request names, or the default one.
func collectionOf(req job.Request) string {
	if req.Collection == "" {
		return gallery.DefaultCollection
	}
	return req.Collection
}

func box(b face.Box) job.Box { return job.Box{X: b.X, Y: b.Y, W: b.W, H: b.H} }

// enroll describes image and adds its largest face to the request's
// collection as its person, under the request's face id (the client's
// externalId) or, without one, an id derived from the image: a retried or
// redelivered enrolment replaces its own face instead of adding one.
func (f *FaceRecognizer) enroll(ctx context.Context, req job.Request, image []byte) (Recognition, error) {
	rec, err := f.Engine.Describe(ctx, image)
	if err != nil {
		return Recognition{}, err
	}
	if len(rec.Faces) == 0 {
		return Recognition{}, fmt.Errorf("%w to enrol in the %dx%d image", gallery.ErrNoFace, rec.Width, rec.Height)
	}
	id := req.FaceID
	if id == "" {
		id = gallery.ContentID(image)
	}
	e := gallery.Entry{V: gallery.Version, Person: req.Person, ID: id, Source: req.Name, Request: req.ID, Descriptor: rec.Faces[0].Descriptor, Enrolled: time.Now().UTC()}
	if err := e.Validate(); err != nil {
		return Recognition{}, err
	}
	if err := gallery.AddFace(ctx, f.Store, collectionOf(req), e); err != nil {
		return Recognition{}, Retryable(err)
	}
	if err := f.thumbnail(ctx, collectionOf(req), req.Person, id, image, rec.Faces[0].Box); err != nil {
		return Recognition{}, err
	}
	if _, err := f.Gallery.Refresh(ctx); err != nil && f.Logger != nil {
		f.Logger.Warn("gallery refresh after enrolment failed; the periodic refresh will retry", "err", err)
	}
	enrolled := job.Face{Box: box(rec.Faces[0].Box), Score: rec.Faces[0].Score, Name: req.Person, FaceID: id, Quality: rec.Faces[0].Quality.Level.String()}
	return Recognition{Width: rec.Width, Height: rec.Height, Faces: []job.Face{enrolled}, Elapsed: engineTime(rec.Timings)}, nil
}

// thumbnail stores the thumbnail of person's face id in collection c
// beside the gallery entry. An image that does not decode again (it just
// did) only loses its thumbnail; a store that fails is retried like the
// entry.
func (f *FaceRecognizer) thumbnail(ctx context.Context, c, person, id string, image []byte, b face.Box) error {
	lim := f.Limits
	if lim == (imageio.Limits{}) {
		lim = imageio.DefaultLimits
	}
	jpg, err := thumbs.FromImage(image, job.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}, lim)
	if err != nil {
		if f.Logger != nil {
			f.Logger.Warn("no thumbnail for an enrolled face", "collection", c, "id", id, "err", err)
		}
		return nil
	}
	if err := thumbs.Put(ctx, f.Store, c, person, id, jpg); err != nil {
		return Retryable(err)
	}
	return nil
}

// Landmarks finds the landmarks of the recognised faces: the engine
// detects again with the landmark net and each face takes the points of
// the detection whose box it shares.
func (f *FaceRecognizer) Landmarks(ctx context.Context, image []byte, faces []job.Face) error {
	if f.Engine == nil {
		return errNoLandmarks
	}
	d, err := f.Engine.Detect(ctx, image)
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

// detect finds the faces and their landmarks, with no gallery.
func (f *FaceRecognizer) detect(ctx context.Context, image []byte) (Recognition, error) {
	d, err := f.Engine.Detect(ctx, image)
	if err != nil {
		return Recognition{}, err
	}
	out := Recognition{Width: d.Width, Height: d.Height, Detections: []job.Detection{}, Elapsed: engineTime(d.Timings)}
	for _, fc := range d.Faces {
		jd := job.Detection{Box: box(fc.Box), Score: fc.Score, Landmarks: make([]job.Point, len(fc.Landmarks))}
		for i, p := range fc.Landmarks {
			jd.Landmarks[i] = job.Point{X: p.X, Y: p.Y}
		}
		out.Detections = append(out.Detections, jd)
	}
	return out, nil
}

// verify compares the largest face of the first image with the largest of
// the second, or with the nearest face of the request's person.
func (f *FaceRecognizer) verify(ctx context.Context, req job.Request, images [][]byte, threshold float64, minQ face.QualityLevel) (Recognition, error) {
	largest := func(i int) (face.Recognition, error) {
		rec, err := f.Engine.Describe(ctx, images[i])
		if err == nil && len(rec.Faces) == 0 {
			err = fmt.Errorf("%w in image %d (%dx%d)", gallery.ErrNoFace, i+1, rec.Width, rec.Height)
		}
		return rec, err
	}
	rec, err := largest(0)
	if err != nil {
		return Recognition{}, err
	}
	out := Recognition{Width: rec.Width, Height: rec.Height, Threshold: threshold, Elapsed: engineTime(rec.Timings)}
	first := rec.Faces[0]
	v := &job.Verification{Threshold: threshold}
	out.Faces = []job.Face{{Box: box(first.Box), Score: first.Score, Quality: first.Quality.Level.String()}}
	levels := []face.QualityLevel{first.Quality.Level}
	if len(images) > 1 {
		rec2, err := largest(1)
		if err != nil {
			return Recognition{}, err
		}
		out.Elapsed += engineTime(rec2.Timings)
		second := rec2.Faces[0]
		v.Distance = face.Distance(first.Descriptor, second.Descriptor)
		out.Faces = append(out.Faces, job.Face{Box: box(second.Box), Score: second.Score, Quality: second.Quality.Level.String()})
		levels = append(levels, second.Quality.Level)
	} else {
		c := collectionOf(req)
		ms := f.Gallery.View(c).Search([]face.Descriptor{first.Descriptor}, 1, req.Person)[0]
		if len(ms) == 0 {
			return Recognition{}, fmt.Errorf("%w: no face of %s in collection %s", errNoPerson, req.Person, c)
		}
		v.Distance, v.Person, v.FaceID = ms[0].Distance, ms[0].Person, ms[0].FaceID
	}
	v.Similarity = gallery.Similarity(v.Distance)
	v.Match = v.Distance <= threshold
	out.Faces[0].Distance, out.Faces[0].Similarity = v.Distance, v.Similarity
	// A face below the quality asked for is not vouched for, however near:
	// the distance is still reported, the answer is no match.
	low := false
	for i, l := range levels {
		if l < minQ {
			low = true
			out.Faces[i].Name = job.LowQuality
		}
	}
	if low {
		v.Match, v.LowQuality = false, true
	}
	if v.Match && v.Person != "" {
		out.Faces[0].Name, out.Faces[0].FaceID = v.Person, v.FaceID
	}
	out.Verification = v
	return out, nil
}

// errNoPerson means a verification named a person with no face enrolled.
var errNoPerson = errors.New("unknown person")

func engineTime(t face.Timings) time.Duration { return t.Decode + t.Detect + t.Describe }
