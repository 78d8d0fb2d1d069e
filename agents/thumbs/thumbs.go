// Package thumbs keeps a small picture of each enrolled face: a square JPEG
// cropped around the face's box at enrolment, stored beside the gallery
// under thumbs/<collection>/<person>/<face id>.jpg, for people looking at
// the gallery (the console). The gallery's own entries hold descriptors
// only; a thumbnail is a separate object keyed by where the face is
// enrolled, so it does not depend on how the gallery stores its entries,
// the same photo enrolled in two collections or as two persons (one face
// id: a hash of the image) keeps a picture in each, and erasing a face
// erases its own picture only (agents/privacy).
//
// Earlier versions kept a thumbnail by face id alone, thumbs/<face id>.jpg
// (LegacyKey). Such a picture is still shown for a face of the default
// collection that has no picture of its own, and an erasure of any face
// with that id deletes it, so an upgrade loses no picture and an erasure
// leaves none behind.
package thumbs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"strings"

	"golang.org/x/image/draw"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
)

// Prefix holds the thumbnails in the gallery store.
const Prefix = "thumbs/"

// Side is a thumbnail's width and height in pixels; Quality its JPEG quality.
const (
	Side    = 112
	Quality = 85
)

// margin is how much of the box's size is added around it on every side,
// so the thumbnail shows the whole head rather than the detector's tight box.
const margin = 0.25

// Key is where the thumbnail of person's face faceID in collection c is
// kept. Collection names, person names and face ids are checked by
// job.ValidCollection, job.ValidPerson and gallery.ValidID: none holds a
// '/' or is "." or "..", so each is one path element.
func Key(c, person, faceID string) string { return PersonPrefix(c, person) + faceID + ".jpg" }

// PersonPrefix holds the thumbnails of person's faces in collection c.
func PersonPrefix(c, person string) string { return Prefix + c + "/" + person + "/" }

// LegacyKey is where earlier versions kept the thumbnail of face faceID,
// whatever its collection and person.
func LegacyKey(faceID string) string { return Prefix + faceID + ".jpg" }

// Have reports which of person's faces ids in collection c have a
// thumbnail: their own, found with one listing of the person's, or for the
// default collection one an earlier version kept (LegacyKey), looked up
// for each face without its own.
func Have(ctx context.Context, st platform.Store, c, person string, ids []string) (map[string]bool, error) {
	keys, err := st.List(ctx, PersonPrefix(c, person))
	if err != nil {
		return nil, fmt.Errorf("list thumbnails of %s: %w", person, err)
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[strings.TrimSuffix(strings.TrimPrefix(k, PersonPrefix(c, person)), ".jpg")] = true
	}
	if c != gallery.DefaultCollection {
		return have, nil
	}
	for _, id := range ids {
		if have[id] {
			continue
		}
		ok, err := st.Exists(ctx, LegacyKey(id))
		if err != nil {
			return nil, fmt.Errorf("look up thumbnail of face %s: %w", id, err)
		}
		have[id] = ok
	}
	return have, nil
}

// Get returns a face's thumbnail (its own, or for the default collection
// the one an earlier version kept), or an error wrapping
// platform.ErrNotFound.
func Get(ctx context.Context, st platform.Store, c, person, faceID string) ([]byte, error) {
	jpg, err := st.Get(ctx, Key(c, person, faceID))
	if errors.Is(err, platform.ErrNotFound) && c == gallery.DefaultCollection {
		jpg, err = st.Get(ctx, LegacyKey(faceID))
	}
	if err != nil {
		return nil, fmt.Errorf("read thumbnail of face %s: %w", faceID, err)
	}
	return jpg, nil
}

// Make returns the JPEG thumbnail of the face in box of img: a square
// around the box grown by a margin, clipped to the image, scaled to Side.
func Make(img image.Image, box job.Box) ([]byte, error) {
	b := img.Bounds()
	if b.Empty() {
		return nil, errors.New("thumbnail of an empty image")
	}
	side := math.Max(box.W, box.H) * (1 + 2*margin)
	cx, cy := box.X+box.W/2, box.Y+box.H/2
	r := image.Rect(int(math.Floor(cx-side/2)), int(math.Floor(cy-side/2)), int(math.Ceil(cx+side/2)), int(math.Ceil(cy+side/2))).
		Add(b.Min).Intersect(b)
	if r.Empty() {
		return nil, fmt.Errorf("face box %+v lies outside the %dx%d image", box, b.Dx(), b.Dy())
	}
	// Keep the crop's shape: a face at the image's edge gives a thumbnail
	// that is not square rather than a stretched one.
	w, h := Side, Side
	if r.Dx() > r.Dy() {
		h = max(1, Side*r.Dy()/r.Dx())
	} else if r.Dy() > r.Dx() {
		w = max(1, Side*r.Dx()/r.Dy())
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, r, draw.Src, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: Quality}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return out.Bytes(), nil
}

// FromImage decodes an encoded image within lim, as the face engine does
// (orientation applied, so boxes match), and returns the thumbnail of box.
func FromImage(data []byte, box job.Box, lim imageio.Limits) ([]byte, error) {
	img, err := imageio.Decode(data, lim)
	if err != nil {
		return nil, fmt.Errorf("thumbnail: %w", err)
	}
	return Make(img, box)
}

// Put stores the thumbnail of person's face faceID in collection c in the
// gallery store.
func Put(ctx context.Context, st platform.Store, c, person, faceID string, jpg []byte) error {
	if err := st.Put(ctx, Key(c, person, faceID), jpg, "image/jpeg"); err != nil {
		return fmt.Errorf("store thumbnail of face %s: %w", faceID, err)
	}
	return nil
}
