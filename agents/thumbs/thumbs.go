// Package thumbs keeps a small picture of each enrolled face: a square JPEG
// cropped around the face's box at enrolment, stored beside the gallery
// under thumbs/<face id>.jpg, for people looking at the gallery (the
// console). The gallery's own entries hold descriptors only; a thumbnail is
// a separate object keyed by the face's id, so it does not depend on how
// the gallery stores its entries, and erasing a face erases it too
// (agents/privacy).
package thumbs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"

	"golang.org/x/image/draw"

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

// Key is where face id's thumbnail is kept.
func Key(faceID string) string { return Prefix + faceID + ".jpg" }

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

// Put stores face id's thumbnail in the gallery store.
func Put(ctx context.Context, st platform.Store, faceID string, jpg []byte) error {
	if err := st.Put(ctx, Key(faceID), jpg, "image/jpeg"); err != nil {
		return fmt.Errorf("store thumbnail of face %s: %w", faceID, err)
	}
	return nil
}
