// Command evalfaces measures the face engine on the evaluation set that
// scripts/eval-faces.sh fetches (scripts/eval/faces.tsv), before and after:
// "before" is the engine's former behaviour (images up to 160 px described
// whole, larger ones through face-api's own pipeline, described whole when
// it finds no face; threshold 0.6, no quality filter), "after" the engine
// and gallery defaults as they are. It prints markdown tables:
//
//   - verification: false-accept and false-reject rates over thresholds on
//     every pair of labelled faces (same person / different people), per
//     quality filter;
//   - open set: the faces of people not in the course gallery, matched
//     against it (how many are named), and perturbed copies of the course
//     faces (how many are named right);
//   - images without a face (Debian's sample images and generated ones):
//     how many get a face, and how many a name;
//   - detection recall on small faces pasted into large canvases and on
//     face crops enlarged to fill the frame.
//
// With -svg it writes the threshold curve; with -check it exits 1 when an
// image without a face or a demo-photo stranger is named, or when the rates
// at the default threshold exceed -max-far / -max-frr.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/perturb"
)

// item is one row of the manifest.
type item struct {
	kind, source, label, path string
	img                       image.Image
}

// Former behaviour ("before").
const (
	beforeThreshold = 0.6
	beforeWholeMax  = 160
)

type pipeline struct {
	name      string
	describe  func(image.Image) face.Recognition
	threshold float64
	minLevel  face.QualityLevel
}

func main() {
	manifest := flag.String("manifest", "scripts/eval/faces.tsv", "the evaluation set's manifest")
	cache := flag.String("cache", "", "the folder scripts/eval-faces.sh fetched the set into")
	dataset := flag.String("dataset", "", "the course dataset folder (face_images_100.zip, classification_100.csv)")
	modelsDir := flag.String("models", "", "the model folder")
	svg := flag.String("svg", "", "write the threshold curve to this SVG file")
	check := flag.Bool("check", false, "exit 1 if a non-face image or a demo-photo stranger is named, or the rates exceed the bounds")
	maxFAR := flag.Float64("max-far", 0.015, "with -check: the largest false-accept rate allowed at the default threshold")
	maxFRR := flag.Float64("max-frr", 0.13, "with -check: the largest false-reject rate allowed at the default threshold")
	alignCrops := flag.Bool("align-crops", false, "run the engine with face.Options.AlignCrops (face crops aligned by their landmarks)")
	flag.Parse()
	if *cache == "" || *dataset == "" || *modelsDir == "" {
		log.Fatal("evalfaces: -cache, -dataset and -models are required (run scripts/eval-faces.sh)")
	}
	items, missing, err := readManifest(*manifest, *cache)
	if err != nil {
		log.Fatal(err)
	}
	after, err := face.Load(*modelsDir, face.Options{AlignCrops: *alignCrops})
	if err != nil {
		log.Fatal(err)
	}
	ref, err := face.Load(*modelsDir, face.Options{Reference: true})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	run := func(e *face.Engine) func(image.Image) face.Recognition {
		return func(img image.Image) face.Recognition {
			rec, err := e.DescribeImage(ctx, img)
			if err != nil {
				log.Fatal(err)
			}
			return rec
		}
	}
	beforeFn := func(img image.Image) face.Recognition {
		b := img.Bounds()
		whole := func() face.Recognition {
			d, err := ref.DescribeFace(img)
			if err != nil {
				log.Fatal(err)
			}
			return face.Recognition{Width: b.Dx(), Height: b.Dy(), Whole: true,
				Faces: []face.Found{{Box: face.Box{W: float64(b.Dx()), H: float64(b.Dy())}, Score: 1, Descriptor: d}}}
		}
		if max(b.Dx(), b.Dy()) <= beforeWholeMax {
			return whole()
		}
		rec := run(ref)(img)
		if len(rec.Faces) == 0 {
			return whole()
		}
		return rec
	}
	defLevel, err := face.ParseQualityFilter(gallery.DefaultQuality)
	if err != nil {
		log.Fatal(err)
	}
	pipes := []pipeline{
		{"before", beforeFn, beforeThreshold, face.QualityPoor},
		{"after", run(after), gallery.DefaultThreshold, defLevel},
	}
	fmt.Printf("# Face evaluation\n\n%d images from the manifest", len(items))
	if missing > 0 {
		fmt.Printf(" (%d more left out: not in the cache)", missing)
	}
	fmt.Printf("; default threshold before %.2f, after %.2f; default quality filter after: %s.\n\n", beforeThreshold, gallery.DefaultThreshold, gallery.DefaultQuality)

	course, err := perturb.LoadCourse(*dataset)
	if err != nil {
		log.Fatal(err)
	}
	bad := 0
	var curves []curve
	for _, p := range pipes {
		t0 := time.Now()
		recs := make([]face.Recognition, len(items))
		for i, it := range items {
			recs[i] = p.describe(it.img)
		}
		per := time.Since(t0) / time.Duration(max(len(items), 1))
		fmt.Printf("## %s (%v per image on average, %d images)\n\n", p.name, per.Round(100*time.Microsecond), len(items))
		curves = append(curves, verification(p, items, recs))
		b := openSet(p, items, recs, course) + nonFaces(p, items, recs, course)
		if p.name == "after" {
			bad += b // -check judges the engine as it is
		}
		detectionRecall(p, items, course)
	}
	if *svg != "" {
		if err := writeSVG(*svg, curves, pipes); err != nil {
			log.Fatal(err)
		}
	}
	if *check {
		c := curves[len(curves)-1]
		far, frr := c.at(gallery.DefaultThreshold)
		if far > *maxFAR || frr > *maxFRR {
			fmt.Printf("\ncheck: at the default threshold FAR %.4f (max %.4f), FRR %.4f (max %.4f)\n", far, *maxFAR, frr, *maxFRR)
			bad++
		}
		if bad > 0 {
			fmt.Printf("\ncheck failed\n")
			os.Exit(1)
		}
		fmt.Printf("\ncheck passed\n")
	}
}

func readManifest(path, cache string) ([]item, int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var items []item
	missing := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, 0, fmt.Errorf("%s: line %q has %d fields, want 5", path, line, len(f))
		}
		kind, rest, _ := strings.Cut(f[1], ":")
		file := filepath.Join(cache, kind, strings.ReplaceAll(rest, "/", "+"), f[3])
		data, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			missing++
			continue
		} else if err != nil {
			return nil, 0, err
		}
		img, err := imageio.Decode(data, imageio.DefaultLimits)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", file, err)
		}
		items = append(items, item{kind: f[0], source: f[1], label: f[2], path: f[3], img: img})
	}
	return items, missing, nil
}

// curve holds the sorted genuine and impostor distances of one pipeline.
type curve struct {
	genuine, impostor []float64
	// lost counts genuine pairs with a side that has no usable face.
	lostGenuine, totalGenuine int
}

// at is the false-accept and false-reject rate at threshold t; pairs with a
// side lost (no face, or below the quality filter) count as rejected.
func (c curve) at(t float64) (far, frr float64) {
	acc := 0
	for _, d := range c.impostor {
		if d <= t {
			acc++
		}
	}
	rej := c.lostGenuine
	for _, d := range c.genuine {
		if d > t {
			rej++
		}
	}
	return float64(acc) / float64(max(1, len(c.impostor))), float64(rej) / float64(max(1, c.totalGenuine))
}

func largest(rec face.Recognition) (face.Found, bool) {
	if len(rec.Faces) == 0 {
		return face.Found{}, false
	}
	return rec.Faces[0], true
}

// pairs builds the curve of the labelled items whose largest face passes
// minLevel.
func pairs(items []item, recs []face.Recognition, minLevel face.QualityLevel) curve {
	type lab struct {
		who string
		d   face.Descriptor
		ok  bool
	}
	var ls []lab
	for i, it := range items {
		if it.kind != "labelled" {
			continue
		}
		f, ok := largest(recs[i])
		ok = ok && f.Quality.Level >= minLevel
		ls = append(ls, lab{it.source + "/" + it.label, f.Descriptor, ok})
	}
	var c curve
	for i := range ls {
		for j := i + 1; j < len(ls); j++ {
			same := ls[i].who == ls[j].who
			if same {
				c.totalGenuine++
			}
			if !ls[i].ok || !ls[j].ok {
				if same {
					c.lostGenuine++
				}
				continue
			}
			d := face.Distance(ls[i].d, ls[j].d)
			if same {
				c.genuine = append(c.genuine, d)
			} else {
				c.impostor = append(c.impostor, d)
			}
		}
	}
	return c
}

func verification(p pipeline, items []item, recs []face.Recognition) curve {
	ids := map[string]int{}
	n, found := 0, 0
	for i, it := range items {
		if it.kind == "labelled" {
			ids[it.source+"/"+it.label]++
			n++
			if len(recs[i].Faces) > 0 {
				found++
			}
		}
	}
	fmt.Printf("### Verification: %d labelled images of %d people, a face in %d\n\n", n, len(ids), found)
	filters := []face.QualityLevel{face.QualityPoor}
	if p.name == "after" {
		filters = []face.QualityLevel{face.QualityPoor, face.QualityLow, face.QualityMedium, face.QualityHigh}
	}
	var main curve
	fmt.Printf("| quality filter | genuine pairs (lost) | impostor pairs | FAR / FRR at 0.40 | 0.45 | 0.50 | 0.55 | 0.60 | equal error rate |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, lv := range filters {
		c := pairs(items, recs, lv)
		if lv == p.minLevel {
			main = c
		}
		name := "none"
		if lv > face.QualityPoor {
			name = lv.String()
		}
		fmt.Printf("| %s | %d (%d) | %d |", name, c.totalGenuine, c.lostGenuine, len(c.impostor))
		for _, t := range []float64{0.40, 0.45, 0.50, 0.55, 0.60} {
			far, frr := c.at(t)
			fmt.Printf(" %.2f%% / %.1f%% |", 100*far, 100*frr)
		}
		eer, et := c.eer()
		fmt.Printf(" %.1f%% at %.3f |\n", 100*eer, et)
	}
	fmt.Printf("\n| threshold | FAR | FRR |\n|---|---|---|\n")
	for t := 0.30; t <= 0.801; t += 0.05 {
		far, frr := main.at(t)
		fmt.Printf("| %.2f | %.2f%% | %.1f%% |\n", t, 100*far, 100*frr)
	}
	far, frr := main.at(p.threshold)
	fmt.Printf("\nAt the default threshold %.2f (quality filter %s): FAR %.2f%%, FRR %.1f%%.\n\n", p.threshold, filterName(p.minLevel), 100*far, 100*frr)
	return main
}

func filterName(l face.QualityLevel) string {
	if l == face.QualityPoor {
		return "none"
	}
	return l.String()
}

// eer is the equal error rate and the threshold where it is reached.
func (c curve) eer() (float64, float64) {
	best, bt := 1.0, 0.0
	for t := 0.2; t <= 1.0; t += 0.001 {
		far, frr := c.at(t)
		if d := math.Abs(far - frr); d < best {
			best, bt = d, t
		}
	}
	far, frr := c.at(bt)
	return (far + frr) / 2, bt
}

// named is the answer a face gets against g under pipeline p: a name, or
// "" for unknown / below the quality filter.
func named(p pipeline, g *gallery.View, f face.Found) (string, float64) {
	name, dist := g.Match(f.Descriptor, p.threshold, false)
	if f.Quality.Level < p.minLevel || name == gallery.Unknown {
		return "", dist
	}
	return name, dist
}

func courseGallery(p pipeline, course *perturb.Course) *gallery.View {
	var entries []gallery.Entry
	for _, s := range course.Stems {
		f, ok := largest(p.describe(course.Images[s]))
		if !ok {
			log.Fatalf("%s: course face %s has no face", p.name, s)
		}
		entries = append(entries, gallery.Entry{V: gallery.Version, Person: course.Labels[s], ID: s, Descriptor: f.Descriptor})
	}
	return gallery.ViewOf(gallery.DefaultCollection, entries)
}

// openSet matches every face of every labelled and stranger image (none of
// them in the course gallery) against the course gallery, and perturbed
// copies of the course faces. It returns 1 when a demo-photo stranger is
// named (a -check failure).
func openSet(p pipeline, items []item, recs []face.Recognition, course *perturb.Course) int {
	g := courseGallery(p, course)
	type tally struct{ faces, named int }
	bySource := map[string]*tally{}
	var demoNamed []string
	for i, it := range items {
		if it.kind != "labelled" && it.kind != "stranger" {
			continue
		}
		src := it.source
		if bySource[src] == nil {
			bySource[src] = &tally{}
		}
		for _, f := range recs[i].Faces {
			bySource[src].faces++
			if name, dist := named(p, g, f); name != "" {
				bySource[src].named++
				if strings.HasPrefix(src, "npm:") {
					demoNamed = append(demoNamed, fmt.Sprintf("%s as %s (%.2f)", filepath.Base(it.path), name, dist))
				}
			}
		}
	}
	fmt.Printf("### Open set: strangers against the course gallery (%d faces of %d people)\n\n| source | faces found | named (false accepts) |\n|---|---|---|\n", g.Len(), len(g.Persons()))
	srcs := make([]string, 0, len(bySource))
	for s := range bySource {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	tf, tn := 0, 0
	for _, s := range srcs {
		t := bySource[s]
		tf, tn = tf+t.faces, tn+t.named
		fmt.Printf("| %s | %d | %d |\n", s, t.faces, t.named)
	}
	fmt.Printf("| all | %d | %d (%.1f%%) |\n\n", tf, tn, 100*float64(tn)/float64(max(tf, 1)))
	if len(demoNamed) > 0 {
		fmt.Printf("Demo-photo strangers named: %s.\n\n", strings.Join(demoNamed, ", "))
	}
	// Perturbed copies of the course faces: named right?
	right, total := 0, 0
	for _, s := range course.Stems {
		for _, v := range perturb.Variants {
			data, err := v.Encode(course.Images[s])
			if err != nil {
				log.Fatal(err)
			}
			img, err := imageio.Decode(data, imageio.DefaultLimits)
			if err != nil {
				log.Fatal(err)
			}
			total++
			if f, ok := largest(p.describe(img)); ok {
				if name, _ := named(p, g, f); name == course.Labels[s] {
					right++
				}
			}
		}
	}
	fmt.Printf("Perturbed copies of the course faces named right: %d of %d.\n\n", right, total)
	if len(demoNamed) > 0 {
		return 1
	}
	return 0
}

// synthetic are the generated images without a face: flat colours, noise,
// gradients, text and a drawn landscape, at several sizes.
func synthetic() []item {
	var out []item
	add := func(name string, img image.Image) {
		out = append(out, item{kind: "nonface", source: "generated", path: name, img: img})
	}
	r := rand.New(rand.NewPCG(546, 11))
	for _, sz := range []int{64, 120, 160, 300, 1024} {
		for _, c := range []color.RGBA{{255, 0, 0, 255}, {255, 255, 255, 255}, {0, 0, 0, 255}, {128, 128, 128, 255}, {200, 170, 140, 255}} {
			m := image.NewRGBA(image.Rect(0, 0, sz, sz))
			draw.Draw(m, m.Bounds(), image.NewUniform(c), image.Point{}, draw.Src)
			add(fmt.Sprintf("flat-%d-%02x%02x%02x", sz, c.R, c.G, c.B), m)
		}
		noise := image.NewRGBA(image.Rect(0, 0, sz, sz))
		for i := range noise.Pix {
			noise.Pix[i] = uint8(r.IntN(256))
			if i%4 == 3 {
				noise.Pix[i] = 255
			}
		}
		add(fmt.Sprintf("noise-%d", sz), noise)
		grad := image.NewRGBA(image.Rect(0, 0, sz, sz))
		for y := range sz {
			for x := range sz {
				grad.Set(x, y, color.RGBA{uint8(255 * x / sz), uint8(255 * y / sz), 128, 255})
			}
		}
		add(fmt.Sprintf("gradient-%d", sz), grad)
	}
	for _, w := range []int{120, 640} {
		add(fmt.Sprintf("text-hello-%d", w), textImage("hello", w))
	}
	add("text-lines-800", textImage("The quick brown fox jumps over the lazy dog. 0123456789", 800))
	add("landscape-1024x768", landscape(1024, 768))
	add("landscape-160x120", landscape(160, 120))
	return out
}

// textImage draws s in black on white, scaled to w pixels wide.
func textImage(s string, w int) image.Image {
	face := basicfont.Face7x13
	tw := font.MeasureString(face, s).Ceil() + 4
	small := image.NewRGBA(image.Rect(0, 0, tw, 17))
	draw.Draw(small, small.Bounds(), image.White, image.Point{}, draw.Src)
	d := font.Drawer{Dst: small, Src: image.Black, Face: face, Dot: fixed.P(2, 13)}
	d.DrawString(s)
	h := max(16, w*17/tw)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.NearestNeighbor.Scale(out, out.Bounds(), small, small.Bounds(), draw.Src, nil)
	return out
}

// landscape draws a sky, a sun, two mountain ridges and a meadow.
func landscape(w, h int) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(7, 7))
	ridge := func(x int, base, amp, f1, f2 float64) float64 {
		fx := float64(x) / float64(w)
		return float64(h) * (base + amp*math.Sin(fx*f1) + amp/2*math.Sin(fx*f2+1))
	}
	for y := range h {
		for x := range w {
			fy := float64(y) / float64(h)
			c := color.RGBA{uint8(90 + 100*fy), uint8(150 + 80*fy), 235, 255}
			if dx, dy := float64(x)-0.75*float64(w), float64(y)-0.2*float64(h); dx*dx+dy*dy < float64(h*h)/160 {
				c = color.RGBA{255, 230, 120, 255}
			}
			if float64(y) > ridge(x, 0.45, 0.08, 9, 23) {
				c = color.RGBA{110, 110, 130, 255}
			}
			if float64(y) > ridge(x, 0.58, 0.05, 5, 17) {
				c = color.RGBA{70, 100, 70, 255}
			}
			if fy > 0.72 {
				v := uint8(r.IntN(40))
				c = color.RGBA{60 + v, 140 + v, 50 + v/2, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// nonFaces reports the images without a face that get a face or a name.
// It returns 1 when one is named.
func nonFaces(p pipeline, items []item, recs []face.Recognition, course *perturb.Course) int {
	g := courseGallery(p, course)
	type row struct {
		images, withFace, named int
		examples                []string
	}
	rows := map[string]*row{}
	var keys []string
	count := func(group string, it item, rec face.Recognition) {
		r := rows[group]
		if r == nil {
			r = &row{}
			rows[group] = r
			keys = append(keys, group)
		}
		r.images++
		if len(rec.Faces) > 0 {
			r.withFace++
		}
		for _, f := range rec.Faces {
			if name, dist := named(p, g, f); name != "" {
				r.named++
				if len(r.examples) < 4 {
					r.examples = append(r.examples, fmt.Sprintf("%s %dx%d as %s (%.2f)", filepath.Base(it.path), rec.Width, rec.Height, name, dist))
				}
				break
			}
		}
	}
	for i, it := range items {
		if it.kind != "nonface" && it.kind != "animal" {
			continue
		}
		group := "Debian sample images, as shipped"
		if it.kind == "animal" {
			group = "animals and drawn faces (Debian), as shipped"
		}
		count(group, it, recs[i])
		// The same, reduced to face-crop sizes.
		for _, side := range []int{64, 150} {
			b := it.img.Bounds()
			s := float64(side) / float64(max(b.Dx(), b.Dy()))
			m := image.NewRGBA(image.Rect(0, 0, max(16, int(float64(b.Dx())*s)), max(16, int(float64(b.Dy())*s))))
			draw.CatmullRom.Scale(m, m.Bounds(), it.img, b, draw.Src, nil)
			g := strings.Replace(group, "as shipped", fmt.Sprintf("reduced to %d px", side), 1)
			count(g, it, p.describe(m))
		}
	}
	for _, it := range synthetic() {
		count("generated (flat colours, noise, gradients, text, landscape)", it, p.describe(it.img))
	}
	fmt.Printf("### Images without a face\n\n| images | count | with a face | named |\n|---|---|---|---|\n")
	bad := 0
	for _, k := range keys {
		r := rows[k]
		fmt.Printf("| %s | %d | %d | %d |\n", k, r.images, r.withFace, r.named)
		if !strings.HasPrefix(k, "animals") {
			bad += r.named
		}
	}
	fmt.Println()
	for _, k := range keys {
		if ex := rows[k].examples; len(ex) > 0 {
			fmt.Printf("- %s, named: %s\n", k, strings.Join(ex, "; "))
		}
	}
	fmt.Println()
	return min(bad, 1)
}

// detectionRecall pastes face crops into large canvases at several sizes
// (faces a few percent of the side) and enlarges them to fill the frame,
// and counts the faces found. A pasted face counts as found when a box's
// centre lies in it and the box is 0.3 to 2 times its side.
func detectionRecall(p pipeline, items []item, course *perturb.Course) {
	var crops []image.Image
	for _, it := range items {
		if it.kind == "labelled" && strings.Contains(it.source, "dlib") {
			crops = append(crops, it.img)
		}
	}
	for _, s := range course.Stems {
		crops = append(crops, course.Images[s])
	}
	if len(crops) == 0 {
		return
	}
	found := func(rec face.Recognition, r image.Rectangle) bool {
		for _, f := range rec.Faces {
			if rec.Whole && p.name == "before" {
				continue // the former whole-image fallback found nothing
			}
			cx, cy := f.Box.X+f.Box.W/2, f.Box.Y+f.Box.H/2
			side := float64(r.Dx())
			if cx >= float64(r.Min.X) && cx <= float64(r.Max.X) && cy >= float64(r.Min.Y) && cy <= float64(r.Max.Y) &&
				f.Box.W >= 0.3*side && f.Box.W <= 2*side {
				return true
			}
		}
		return false
	}
	bg := items[0].img
	for _, it := range items {
		if it.kind == "nonface" && strings.HasSuffix(it.path, "aero1.jpg") {
			bg = it.img
		}
	}
	fmt.Printf("### Detection recall\n\n| faces | found |\n|---|---|\n")
	const cw, ch = 2400, 1600
	for _, frac := range []float64{0.02, 0.03, 0.05, 0.08, 0.15} {
		side := int(frac * cw)
		hit, n := 0, 0
		// Six faces per canvas, on a grid, over a photo background.
		for start := 0; start < len(crops); start += 6 {
			canvas := image.NewRGBA(image.Rect(0, 0, cw, ch))
			draw.CatmullRom.Scale(canvas, canvas.Bounds(), bg, bg.Bounds(), draw.Src, nil)
			var rects []image.Rectangle
			for k := 0; k < 6 && start+k < len(crops); k++ {
				x := 150 + (k%3)*(cw-300)/3
				y := 200 + (k/3)*(ch-400)/2
				r := image.Rect(x, y, x+side, y+side)
				draw.CatmullRom.Scale(canvas, r, crops[start+k], crops[start+k].Bounds(), draw.Src, nil)
				rects = append(rects, r)
			}
			rec := p.describe(canvas)
			for _, r := range rects {
				n++
				if found(rec, r) {
					hit++
				}
			}
		}
		fmt.Printf("| %d%% of a %dx%d photo's side (%d px) | %d of %d |\n", int(frac*100), cw, ch, side, hit, n)
	}
	for _, side := range []int{240, 480, 960} {
		hit := 0
		for _, c := range crops {
			m := image.NewRGBA(image.Rect(0, 0, side, side))
			draw.CatmullRom.Scale(m, m.Bounds(), c, c.Bounds(), draw.Src, nil)
			if found(p.describe(m), m.Bounds()) {
				hit++
			}
		}
		fmt.Printf("| face crop enlarged to fill %dx%d | %d of %d |\n", side, side, hit, len(crops))
	}
	// Large photos of one person (go-face's test photos, portraits).
	hit, n := 0, 0
	for _, it := range items {
		if it.kind == "labelled" && strings.Contains(it.source, "go-face") {
			n++
			rec := p.describe(it.img)
			if len(rec.Faces) > 0 && !(rec.Whole && p.name == "before") {
				hit++
			}
		}
	}
	fmt.Printf("| portraits, one person each (go-face test photos) | %d of %d with a face |\n\n", hit, n)
}

func writeSVG(path string, curves []curve, pipes []pipeline) error {
	const w, h, l, r, t, b = 640, 400, 60, 20, 30, 50
	x := func(v float64) float64 { return l + (v-0.3)/(0.8-0.3)*(w-l-r) }
	y := func(v float64) float64 { return t + (1-v)*(h-t-b) }
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&buf, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for v := 0.0; v <= 1.001; v += 0.2 {
		fmt.Fprintf(&buf, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#ddd"/><text x="%g" y="%g" text-anchor="end">%.0f%%</text>`+"\n", float64(l), y(v), float64(w-r), y(v), float64(l-5), y(v)+4, v*100)
	}
	for v := 0.3; v <= 0.801; v += 0.1 {
		fmt.Fprintf(&buf, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#ddd"/><text x="%g" y="%g" text-anchor="middle">%.1f</text>`+"\n", x(v), float64(t), x(v), float64(h-b), x(v), float64(h-b+16), v)
	}
	fmt.Fprintf(&buf, `<text x="%g" y="%d" text-anchor="middle">distance threshold</text>`+"\n", float64(w)/2, h-10)
	colours := []string{"#999", "#1f5fbf"}
	for i, c := range curves {
		for k, what := range []string{"FAR", "FRR"} {
			var pts []string
			for v := 0.3; v <= 0.8001; v += 0.005 {
				far, frr := c.at(v)
				val := far
				if k == 1 {
					val = frr
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(v), y(val)))
			}
			dash := ""
			if k == 1 {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(&buf, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colours[i%2], dash, strings.Join(pts, " "))
			fmt.Fprintf(&buf, `<text x="%d" y="%d" fill="%s">%s %s</text>`+"\n", w-r-150, t+16+16*(2*i+k), colours[i%2], what, pipes[i].name)
		}
		fmt.Fprintf(&buf, `<line x1="%g" y1="%d" x2="%g" y2="%d" stroke="%s" stroke-dasharray="2 3"/>`+"\n", x(pipes[i].threshold), t, x(pipes[i].threshold), h-b, colours[i%2])
	}
	fmt.Fprintf(&buf, "</svg>\n")
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
