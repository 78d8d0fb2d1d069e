package face

import (
	"context"
	"image"
	"image/color"
	"testing"

	"golang.org/x/image/draw"
)

func TestParseQualityFilter(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    QualityLevel
		wantErr bool
	}{
		"none":     {"none", QualityPoor, false},
		"low":      {"low", QualityLow, false},
		"medium":   {"medium", QualityMedium, false},
		"high":     {"high", QualityHigh, false},
		"empty":    {"", 0, true},
		"auto":     {"auto", 0, true},
		"case":     {"HIGH", 0, true},
		"level 4+": {"poor", 0, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseQualityFilter(tc.in)
			if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
				t.Fatalf("ParseQualityFilter(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestQualityGrade(t *testing.T) {
	tests := map[string]struct {
		q    Quality
		want QualityLevel
	}{
		"large sharp sure face": {Quality{Size: 200, Score: 0.95, Sharpness: 900}, QualityHigh},
		"course-sized face":     {Quality{Size: 64, Score: 0.8, Sharpness: 900}, QualityMedium},
		"blurred":               {Quality{Size: 200, Score: 0.95, Sharpness: 30}, QualityLow},
		"unsure":                {Quality{Size: 200, Score: 0.4, Sharpness: 900}, QualityLow},
		"tiny":                  {Quality{Size: 16, Score: 0.95, Sharpness: 900}, QualityPoor},
		"flat":                  {Quality{Size: 200, Score: 0.95, Sharpness: 0}, QualityPoor},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.q.grade()
			if tc.q.Level != tc.want {
				t.Fatalf("level %v, want %v", tc.q.Level, tc.want)
			}
		})
	}
}

// TestSharpness: blurring a face lowers its sharpness; a flat image has
// none; the measure does not depend on the face's size.
func TestSharpness(t *testing.T) {
	face := goldenFaces(t)[0]
	m := toRGB(face)
	full := image.Rect(0, 0, m.W, m.H)
	sharp := sharpness(m, full)
	blurred := toRGB(scaled(scaled(face, 16, 16), 64, 64))
	if b := sharpness(blurred, full); b >= sharp/4 {
		t.Errorf("blurred face sharpness %.0f, sharp %.0f: want at least 4× lower", b, sharp)
	}
	big := toRGB(scaled(face, 256, 256))
	if b := sharpness(big, image.Rect(0, 0, 256, 256)); b < sharp/3 || b > 3*sharp {
		t.Errorf("face at 256 px sharpness %.0f, at 64 px %.0f: want within 3×", b, sharp)
	}
	flat := image.NewRGBA(image.Rect(0, 0, 100, 100))
	draw.Draw(flat, flat.Bounds(), image.NewUniform(color.Gray{90}), image.Point{}, draw.Src)
	if v := sharpness(toRGB(flat), flat.Bounds()); v != 0 {
		t.Errorf("flat image sharpness %v, want 0", v)
	}
}

// TestFacesHaveQuality: every face the engine returns carries its measures
// and a level, and the course faces are at least medium.
func TestFacesHaveQuality(t *testing.T) {
	e := loadEngine(t)
	for i, f := range goldenFaces(t) {
		rec, err := e.DescribeImage(context.Background(), f)
		if err != nil || len(rec.Faces) != 1 {
			t.Fatalf("face %d: %+v %v", i, rec.Faces, err)
		}
		q := rec.Faces[0].Quality
		if q.Size != 64 || q.Score != rec.Faces[0].Score || q.Sharpness <= 0 || q.Level < QualityMedium {
			t.Errorf("course face %d quality %+v, want size 64 and at least medium", i, q)
		}
	}
	rec := describeDemo(t, e, "sample1.jpg")
	for i, f := range rec.Faces {
		if f.Quality.Size <= 0 || f.Quality.Sharpness <= 0 || f.Quality.Score != f.Score {
			t.Errorf("demo face %d quality %+v", i, f.Quality)
		}
	}
}
