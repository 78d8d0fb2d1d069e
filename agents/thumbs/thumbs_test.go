package thumbs

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"net/url"
	"testing"

	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
)

// picture is a w×h grey image with a white square at (x, y) of side s.
func picture(w, h, x, y, s int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for py := range h {
		for px := range w {
			c := color.RGBA{40, 40, 40, 255}
			if px >= x && px < x+s && py >= y && py < y+s {
				c = color.RGBA{250, 250, 250, 255}
			}
			m.Set(px, py, c)
		}
	}
	return m
}

func TestMake(t *testing.T) {
	tests := map[string]struct {
		w, h   int
		box    job.Box
		wantW  int
		wantH  int
		bright bool // the thumbnail's centre is the face's white square
		err    bool
	}{
		"face in the middle":    {w: 400, h: 300, box: job.Box{X: 150, Y: 100, W: 100, H: 100}, wantW: Side, wantH: Side, bright: true},
		"face at the left edge": {w: 400, h: 300, box: job.Box{X: 0, Y: 100, W: 100, H: 100}, wantW: Side * 125 / 150, wantH: Side},
		"whole small image":     {w: 160, h: 160, box: job.Box{W: 160, H: 160}, wantW: Side, wantH: Side, bright: false},
		"box outside":           {w: 100, h: 100, box: job.Box{X: 500, Y: 500, W: 10, H: 10}, err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			img := picture(tc.w, tc.h, int(tc.box.X), int(tc.box.Y), int(tc.box.W))
			b, err := Make(img, tc.box)
			if tc.err {
				if err == nil {
					t.Fatal("no error for a box outside the image")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Bounds().Size(); got.X < tc.wantW-1 || got.X > tc.wantW+1 || got.Y != tc.wantH {
				t.Fatalf("thumbnail %v, want %dx%d", got, tc.wantW, tc.wantH)
			}
			if tc.bright {
				r, _, _, _ := out.At(Side/2, Side/2).RGBA()
				c, _, _, _ := out.At(2, 2).RGBA()
				if r>>8 < 200 || c>>8 > 80 {
					t.Fatalf("centre %d corner %d: the crop is not around the face", r>>8, c>>8)
				}
			}
		})
	}
}

func TestFromImage(t *testing.T) {
	var src bytes.Buffer
	if err := jpeg.Encode(&src, picture(320, 240, 100, 60, 80), nil); err != nil {
		t.Fatal(err)
	}
	b, err := FromImage(src.Bytes(), job.Box{X: 100, Y: 60, W: 80, H: 80}, imageio.DefaultLimits)
	if err != nil || len(b) == 0 || len(b) > 16<<10 {
		t.Fatalf("FromImage = %d bytes, %v; want a small JPEG", len(b), err)
	}
	if _, err := FromImage([]byte("not an image"), job.Box{W: 1, H: 1}, imageio.DefaultLimits); err == nil {
		t.Fatal("no error for bytes that are not an image")
	}
}

// TestKeys: a thumbnail is kept per collection, person and face, so the
// same photo (one face id) enrolled twice keeps two pictures; a picture an
// earlier version kept by face id alone is read for the default
// collection only.
func TestKeys(t *testing.T) {
	ctx := context.Background()
	st, err := blobstore.OpenURL(ctx, &url.URL{Scheme: "file", Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := Key("team-a", "Ada Lovelace", "abc"); got != "thumbs/team-a/Ada Lovelace/abc.jpg" {
		t.Fatalf("Key = %q", got)
	}
	if err := Put(ctx, st, "team-a", "Ada", "same", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := Put(ctx, st, "team-b", "Ada", "same", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, LegacyKey("old"), []byte("legacy"), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		c, person, id string
		want          string // "": none
	}{
		"own in one collection": {c: "team-a", person: "Ada", id: "same", want: "a"},
		"own in another":        {c: "team-b", person: "Ada", id: "same", want: "b"},
		"another person's face": {c: "team-a", person: "Bob", id: "same"},
		"legacy in the default": {c: gallery.DefaultCollection, person: "Ada", id: "old", want: "legacy"},
		"legacy not in another": {c: "team-a", person: "Ada", id: "old"},
		"none in the default":   {c: gallery.DefaultCollection, person: "Ada", id: "none"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			have, err := Have(ctx, st, tc.c, tc.person, []string{tc.id})
			if err != nil || have[tc.id] != (tc.want != "") {
				t.Fatalf("Have = %v %v, want %s: %v", have, err, tc.id, tc.want != "")
			}
			b, err := Get(ctx, st, tc.c, tc.person, tc.id)
			if tc.want == "" {
				if !errors.Is(err, platform.ErrNotFound) {
					t.Fatalf("Get = %q %v, want not found", b, err)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Fatalf("Get = %q %v, want %q", b, err, tc.want)
			}
		})
	}
}
