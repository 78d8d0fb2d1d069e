package face

import (
	"fmt"
	"image"
)

// QualityLevel grades how well a face can be recognised, from QualityPoor
// to QualityHigh. As a minimum asked for (a quality filter), QualityPoor
// lets every face through: "none" in the API.
type QualityLevel int

// Quality levels, lowest first.
const (
	QualityPoor QualityLevel = iota
	QualityLow
	QualityMedium
	QualityHigh
)

// String is the level's name: poor, low, medium or high.
func (l QualityLevel) String() string {
	switch l {
	case QualityPoor:
		return "poor"
	case QualityLow:
		return "low"
	case QualityMedium:
		return "medium"
	case QualityHigh:
		return "high"
	}
	return fmt.Sprintf("QualityLevel(%d)", int(l))
}

// Quality filter names, as requests spell them (Rekognition's QualityFilter
// without AUTO).
const (
	FilterNone   = "none"
	FilterLow    = "low"
	FilterMedium = "medium"
	FilterHigh   = "high"
)

// ParseQualityFilter maps a filter name to the lowest level it lets
// through: none → QualityPoor (every face), low → QualityLow (all but the
// poorest), medium, high.
func ParseQualityFilter(s string) (QualityLevel, error) {
	switch s {
	case FilterNone:
		return QualityPoor, nil
	case FilterLow:
		return QualityLow, nil
	case FilterMedium:
		return QualityMedium, nil
	case FilterHigh:
		return QualityHigh, nil
	}
	return 0, fmt.Errorf("quality %q: want none, low, medium or high", s)
}

// Quality says how well a face can be recognised and why.
type Quality struct {
	// Size is the shorter side of the face's box in the image's pixels.
	Size float64
	// Score is the detector's confidence in the face.
	Score float64
	// Sharpness is the variance of the Laplacian of the face in grey
	// levels, with the face resized to sharpnessSide pixels: a sharp face
	// gives several hundred, a blurred or upscaled one tens.
	Sharpness float64
	// Level is the grade the three give together (the lowest of theirs).
	Level QualityLevel
}

// qualityBar is the least size, detector score and sharpness of a level.
type qualityBar struct {
	size, score, sharpness float64
}

// qualityBars are the bars of QualityLow, QualityMedium and QualityHigh;
// a face below the first is QualityPoor. They are calibrated on the
// evaluation in docs/gallery.md.
var qualityBars = [3]qualityBar{
	{size: 20, score: 0.3, sharpness: 20},
	{size: 40, score: 0.5, sharpness: 60},
	{size: 100, score: 0.8, sharpness: 150},
}

// grade sets q.Level from its measures.
func (q *Quality) grade() {
	q.Level = QualityPoor
	for i, b := range qualityBars {
		if q.Size < b.size || q.Score < b.score || q.Sharpness < b.sharpness {
			return
		}
		q.Level = QualityLevel(i + 1)
	}
}

// sharpnessSide is the side faces are resized to before their sharpness
// is measured, so that it compares faces of any size.
const sharpnessSide = 64

// sharpness is the variance of the 4-neighbour Laplacian of the grey
// image of m inside r, reduced by averaging to at most sharpnessSide pixels
// a side (a smaller face is measured at its own size: it is not enlarged,
// which would either blur it or add the edges of enlarged pixels).
func sharpness(m rgb, r image.Rectangle) float64 {
	r = r.Intersect(image.Rect(0, 0, m.W, m.H))
	if r.Dx() < 3 || r.Dy() < 3 {
		return 0
	}
	nx, ny := min(sharpnessSide, r.Dx()), min(sharpnessSide, r.Dy())
	g := make([]float64, nx*ny)
	for j := range ny {
		y0, y1 := r.Min.Y+j*r.Dy()/ny, r.Min.Y+(j+1)*r.Dy()/ny
		for i := range nx {
			x0, x1 := r.Min.X+i*r.Dx()/nx, r.Min.X+(i+1)*r.Dx()/nx
			sum := 0.0
			for y := y0; y < y1; y++ {
				p := m.Pix[3*(y*m.W+x0) : 3*(y*m.W+x1)]
				for k := 0; k < len(p); k += 3 {
					sum += 0.299*float64(p[k]) + 0.587*float64(p[k+1]) + 0.114*float64(p[k+2])
				}
			}
			g[j*nx+i] = sum / float64((y1-y0)*(x1-x0))
		}
	}
	var sum, sum2 float64
	for y := 1; y < ny-1; y++ {
		for x := 1; x < nx-1; x++ {
			l := g[(y-1)*nx+x] + g[(y+1)*nx+x] + g[y*nx+x-1] + g[y*nx+x+1] - 4*g[y*nx+x]
			sum += l
			sum2 += l * l
		}
	}
	cnt := float64((nx - 2) * (ny - 2))
	mean := sum / cnt
	return sum2/cnt - mean*mean
}

// measureQuality grades a face whose box is b, with detector score score,
// described from the crop r of m.
func measureQuality(m rgb, b Box, score float64, r image.Rectangle) Quality {
	q := Quality{Size: min(b.W, b.H), Score: score, Sharpness: sharpness(m, r)}
	q.grade()
	return q
}
