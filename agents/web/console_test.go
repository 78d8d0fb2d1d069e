package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/facecloud/facecloud/agents/face"
	galleries "github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/imageio"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/platform"
	live "github.com/facecloud/facecloud/agents/status"
	"github.com/facecloud/facecloud/agents/thumbs"
	"github.com/facecloud/facecloud/internal/browsertest"
	"github.com/facecloud/facecloud/internal/testenv"
)

// consoleWorker is a test double for the worker agent as the console sees
// it, without the face engine: a recognition finds two faces at fixed
// boxes (with 68 landmarks inside each when asked), an enrolment writes
// the gallery entry and a thumbnail cut from the image, as the worker
// does; an image named fail… fails, as one without a face would.
type consoleWorker struct {
	// busy is held while the worker receives and handles a batch: the
	// test holds it (pause) to keep requests queued.
	busy   sync.Mutex
	paused atomic.Bool
}

// pause returns once the worker is between batches, and keeps it there
// until resume.
func (w *consoleWorker) pause() {
	w.busy.Lock()
	w.paused.Store(true)
}

func (w *consoleWorker) resume() {
	w.paused.Store(false)
	w.busy.Unlock()
}

// tryFaces are the faces every recognition finds in the test photo.
var tryFaces = []job.Face{
	{Box: job.Box{X: 20, Y: 20, W: 70, H: 70}, Score: 0.93, Name: "Ada", Distance: 0.312, Quality: "high"},
	{Box: job.Box{X: 120, Y: 30, W: 60, H: 60}, Score: 0.88, Name: "unknown", Distance: 0.804, Quality: "medium"},
}

func (e *env) startConsoleWorker() *consoleWorker {
	e.t.Helper()
	w := &consoleWorker{}
	reqs, reps := e.queue("requests"), e.queue("replies")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			w.busy.Lock()
			msgs, _ := reqs.Receive(ctx, 10, 100*time.Millisecond)
			for _, m := range msgs {
				w.handle(ctx, e.store, reps, m)
				_ = reqs.Delete(ctx, m.Receipt)
			}
			w.busy.Unlock()
		}
	})
	e.t.Cleanup(func() {
		cancel()
		if w.paused.Load() {
			w.resume()
		}
		wg.Wait()
	})
	return w
}

func (w *consoleWorker) handle(ctx context.Context, st platform.Store, reps platform.Queue, m platform.Message) {
	var req job.Request
	if job.Decode(m.Body, &req) != nil {
		return
	}
	data, _ := st.Get(ctx, req.Input)
	res := job.Result{V: job.Version, ID: req.ID, Name: req.Name, Status: job.StatusDone, Width: 200, Height: 120, Finished: time.Now().UTC()}
	switch {
	case strings.HasPrefix(req.Name, "fail"):
		res.Status, res.Error = job.StatusFailed, req.Name+": no face found"
	case req.Kind == job.KindEnroll:
		box := job.Box{X: 50, Y: 20, W: 80, H: 80}
		var d face.Descriptor
		d[0] = 1 // a unit descriptor: the gallery takes no other
		id, c := galleries.ContentID(data), req.Collection
		if c == "" {
			c = galleries.DefaultCollection
		}
		_ = galleries.AddFace(ctx, st, c, galleries.Entry{V: galleries.Version, Person: req.Person, ID: id, Source: req.Name, Request: req.ID, Descriptor: d, Enrolled: time.Now().UTC()})
		if jpg, err := thumbs.FromImage(data, box, imageio.DefaultLimits); err == nil {
			_ = thumbs.Put(ctx, st, c, req.Person, id, jpg)
		}
		res.Collection = c
		res.Answer, res.Faces = req.Person, []job.Face{{Box: box, Score: 1, Name: req.Person}}
	default:
		res.Faces = append([]job.Face(nil), tryFaces...)
		res.Answer = res.Faces[0].Name
		if req.Landmarks {
			for i := range res.Faces {
				b := res.Faces[i].Box
				for k := range 68 {
					res.Faces[i].Landmarks = append(res.Faces[i].Landmarks, job.Point{X: b.X + b.W*float64(k%9+1)/10, Y: b.Y + b.H*float64(k/9+1)/9})
				}
			}
		}
	}
	body, _ := job.Encode(res)
	if st.Put(ctx, job.ResultKey(req.ID), body, "application/json") != nil {
		return
	}
	rep, _ := job.Encode(job.Reply{V: job.Version, ID: req.ID, Status: res.Status, Output: job.ResultKey(req.ID)})
	_ = reps.Send(ctx, rep)
}

// consolePhoto writes a 200×120 PNG with two light squares where
// tryFaces are, and returns its path.
func consolePhoto(t *testing.T, name string) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 200, 120))
	for y := range 120 {
		for x := range 200 {
			c := color.RGBA{60, 70, 90, 255}
			if (x >= 20 && x < 90 && y >= 20 && y < 90) || (x >= 120 && x < 180 && y >= 30 && y < 90) {
				c = color.RGBA{230, 200, 170, 255}
			}
			img.Set(x, y, c)
		}
	}
	// Photos of different names differ (the gallery keeps one face per
	// distinct photo).
	img.Set(0, 0, color.RGBA{name[0], name[len(name)/2], name[len(name)-5], 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// screenshot writes the page as docs/console/<name>.png: the README and
// docs/web-api.md show the console as the tests last saw it.
func screenshot(b *browsertest.Tab, name string) {
	b.Screenshot(filepath.Join(testenv.RepoRoot(), "docs", "console", name+".png"))
}

// history is a report of another web host, "web-2", that answered calls
// over the last 10 minutes at a rising rate with a latency that grew with
// the backlog, and the scaler's backlog and fleet over the same minutes:
// the Live view's charts as they look during a workload.
func history(now time.Time) (live.WebReport, []live.FleetStep, []live.Decision) {
	rec := live.NewRecorder("web-2", now.Add(-time.Hour))
	var steps []live.FleetStep
	var decisions []live.Decision
	start := now.Add(-live.Window + live.StepLength)
	for i := 0; i < int(live.Window/live.StepLength)-1; i++ {
		t := start.Add(time.Duration(i) * live.StepLength)
		workers := min(1+i/6, 4)
		backlog := max(0, 40-3*i+i*i/20)
		calls := 10 * workers
		for k := range calls {
			d := time.Duration(900+40*backlog+25*k) * time.Millisecond
			rec.Answered(t.Add(time.Duration(k)*live.StepLength/time.Duration(calls)), d)
		}
		if i%17 == 5 {
			rec.Failed(live.Failure{At: t, Call: "POST /", Status: 422, Reason: "scan.jpg: no face found"})
		}
		if i > 0 && workers != steps[i-1].Desired {
			decisions = append([]live.Decision{{At: t, Action: "scale-out", From: workers - 1, To: workers, Backlog: backlog,
				Reason: fmt.Sprintf("backlog %d wants %d workers at 4 each", backlog, min((backlog+3)/4, 4))}}, decisions...)
		}
		steps = append(steps, live.FleetStep{T: t.Truncate(live.StepLength), Backlog: backlog, Desired: workers, Running: min(workers, 1+(i-1)/6), Pending: workers - min(workers, 1+(i-1)/6)})
	}
	return rec.Report(now, 5*time.Second), steps, decisions
}

// signIn opens the console and signs in with key.
func signIn(b *browsertest.Tab, base, key string) {
	b.Do("sign in",
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)),
	)
}

func TestConsoleSignIn(t *testing.T) {
	e := newEnv(t)
	_, hs := e.server(testConfig())
	tests := map[string]struct {
		key  string
		want string // in the sign-in error; empty: signed in
	}{
		"unknown key":     {key: "fc_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", want: "The key was refused: invalid API key"},
		"recognition key": {key: e.newKey(keys.Recognize), want: "it needs the admin scope"},
		"admin key":       {key: testKey},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := browsertest.Open(t)
			signIn(b, hs.URL, tc.key)
			if tc.want != "" {
				b.Wait("the refusal", `document.getElementById("signin-error").textContent !== ""`)
				if got := b.Text("#signin-error"); !strings.Contains(got, tc.want) {
					t.Fatalf("sign-in error %q, want %q", got, tc.want)
				}
				if browsertest.Eval[bool](b, "session storage", `sessionStorage.getItem("facecloud-api-key") !== null`) {
					t.Fatal("a refused key was kept in session storage")
				}
				b.NoErrors()
				return
			}
			b.Wait("the live view", `!document.getElementById("live").hidden && document.getElementById("live").dataset.updated !== undefined`)
			// A reload keeps the session (the key is in sessionStorage),
			// signing out forgets it.
			b.Do("reload", chromedp.Reload())
			b.Wait("signed in after a reload", `!document.getElementById("tabs").hidden`)
			b.Do("sign out", chromedp.Click(chromedp.CSS("#signout")))
			b.Wait("signed out", `!document.getElementById("signin-panel").hidden && sessionStorage.getItem("facecloud-api-key") === null`)
			b.NoErrors()
		})
	}
}

// TestConsoleLive fills the state the Live view shows — requests queued
// behind a held worker, the scaler's report with dead letters and a
// decision, a failed call — and reads it off the page as it updates.
func TestConsoleLive(t *testing.T) {
	e := newEnv(t)
	w := e.startConsoleWorker()
	_, hs := e.server(testConfig())
	ctx := context.Background()

	// One answered call, one refused.
	if r := postImage(t, hs.URL, "ok.png", pngImage(t, 64, 64)); r.status != http.StatusOK {
		t.Fatalf("POST / = %d %s", r.status, r.body)
	}
	if r := postImage(t, hs.URL, "notes.png", []byte("not an image")); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("POST / of text = %d", r.status)
	}
	// Three requests wait in the queue.
	w.pause()
	for i := range 3 {
		body, ct := multipartBody(t, filePart{"inputFile", fmt.Sprintf("q%d.png", i), pngImage(t, 32, 32)})
		if r := do(t, http.MethodPost, hs.URL+"/v1/recognitions?wait=0", ct, body); r.status != http.StatusAccepted {
			t.Fatalf("queue a request: %d %s", r.status, r.body)
		}
	}
	dead := 2
	now := time.Now().UTC()
	other, fleetSteps, decisions := history(now)
	if err := live.Put(ctx, e.store, live.WebKey("web-2"), other); err != nil {
		t.Fatal(err)
	}
	fleetSteps = append(fleetSteps, live.FleetStep{T: now.Truncate(live.StepLength), Backlog: 3, Desired: 1, Pending: 1})
	err := live.Put(ctx, e.store, live.ScalerKey, live.ScalerReport{
		V: live.Version, Holder: "scaler-test", Written: now, Polled: now, EveryMS: 60000, IntervalMS: 1000,
		Policy: live.Policy{Min: 0, Max: 4, TargetBacklog: 4}, Queue: live.Queue{Visible: 3, DeadLetter: &dead},
		Fleet: live.Fleet{Desired: 1, Running: 0, Pending: 1, Max: 4},
		Last:  live.Decision{At: now, Action: "hold", From: 1, To: 1, Backlog: 3, Reason: "backlog 3 matches 1 workers"},
		Decisions: append([]live.Decision{
			{At: now.Add(-time.Second), Action: "scale-out", From: 0, To: 1, Backlog: 3, Reason: "backlog 3 wants 1 workers at 4 each"},
		}, decisions...),
		Steps: fleetSteps,
	})
	if err != nil {
		t.Fatal(err)
	}

	b := browsertest.Open(t)
	signIn(b, hs.URL, testKey)
	b.Wait("the figures", `document.getElementById("q-visible").textContent === "3" && document.getElementById("q-dead").textContent === "2"`)
	for sel, want := range map[string]string{
		"#f-desired": "1", "#f-pending": "1",
		"#r-note":          "on 2 web hosts",
		"#decisions tbody": "backlog 3 wants 1 workers at 4 each",
		"#failures tbody":  "POST /415notes.png",
		"#scaler-state":    "Now: hold at 1 — backlog 3 matches 1 workers",
	} {
		if got := b.Text(sel); !strings.Contains(got, want) {
			t.Errorf("%s shows %q, want %q", sel, got, want)
		}
	}
	if !browsertest.Eval[bool](b, "dead letters flagged", `document.getElementById("card-queue").classList.contains("alert")`) {
		t.Error("dead letters do not flag the queue card")
	}
	if n := browsertest.Eval[int](b, "charts", `document.querySelectorAll("#chart-rate path.line, #chart-latency path.line, #chart-fleet path.line").length`); n < 7 {
		t.Errorf("%d chart lines drawn, want the answered and failed calls, both latencies, the backlog and the fleet's", n)
	}
	screenshot(b, "live")

	// The worker takes the queued requests: the next polls show the queue
	// empty, without a reload.
	w.resume()
	b.Wait("the queue drained on the page", `document.getElementById("q-visible").textContent === "0"`)
	b.NoErrors()
}

// TestConsoleGallery enrols a person by choosing photos and another by
// dropping one, sees their thumbnails, enrols one of the same photos in a
// second collection typed into the form, switches the picker between the
// collections, deletes a face, then a person, then with the purge box the
// other collection's person: each collection keeps its own thumbnails.
func TestConsoleGallery(t *testing.T) {
	e := newEnv(t)
	e.startConsoleWorker()
	_, hs := e.server(testConfig())
	ctx := context.Background()
	b := browsertest.Open(t)
	signIn(b, hs.URL, testKey)
	b.Wait("signed in", `!document.getElementById("tabs").hidden`)
	b.Do("gallery tab", chromedp.Click(chromedp.CSS(`a[data-tab="gallery"]`)))
	b.Wait("empty gallery", `document.getElementById("persons").dataset.loaded !== undefined`)
	// A new deployment has no collection yet: the picker offers the
	// default one to enrol in.
	if got := browsertest.Eval[[]string](b, "collections offered", pickerOptions); !slices.Equal(got, []string{"default"}) {
		t.Fatalf("picker offers %q before any enrolment, want the default collection", got)
	}
	if got := b.Text("#gallery-count"); got != "0 persons, 0 faces in collection default" {
		t.Errorf("empty gallery count %q", got)
	}

	photos := []string{consolePhoto(t, "ada-1.png"), consolePhoto(t, "ada-2.png")}
	b.Do("enrol Ada",
		chromedp.SendKeys(chromedp.CSS("#enrol-person"), "Ada Lovelace"),
		chromedp.SetUploadFiles(chromedp.CSS("#enrol-files"), photos),
		chromedp.Click(chromedp.CSS(`#enrol button[type="submit"]`)),
	)
	b.Wait("Ada enrolled", `document.getElementById("enrol-result").dataset.done === "2"`)
	if got := b.Text("#enrol-result"); got != "Enrolled 2 faces as Ada Lovelace." {
		t.Fatalf("enrol result %q", got)
	}
	// A dropped photo: a drop event carrying a file, as a file manager sends.
	b.Do("name Bob", chromedp.SetValue(chromedp.CSS("#enrol-person"), "Bob"))
	browsertest.Eval[bool](b, "drop a photo", `(async () => {
		const c = document.createElement("canvas"); c.width = 200; c.height = 120;
		const g = c.getContext("2d"); g.fillStyle = "#3c465a"; g.fillRect(0, 0, 200, 120);
		g.fillStyle = "#e6c8aa"; g.beginPath(); g.ellipse(90, 60, 30, 40, 0, 0, 2 * Math.PI); g.fill();
		const png = await new Promise((ok) => c.toBlob(ok, "image/png"));
		const dt = new DataTransfer();
		dt.items.add(new File([png], "bob.png", {type: "image/png"}));
		document.getElementById("enrol-drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
		return true;
	})()`)
	b.Do("enrol Bob", chromedp.Click(chromedp.CSS(`#enrol button[type="submit"]`)))
	b.Wait("Bob enrolled", `document.getElementById("enrol-result").textContent === "Enrolled 1 face as Bob."`)
	// The view reloads after the enrolment; until then it shows Ada alone.
	b.Wait("the gallery with Bob", `document.getElementById("gallery-count").textContent === "2 persons, 3 faces in collection default"`)
	b.Wait("thumbnails shown", thumbnailsShown("Ada Lovelace", 2))

	// The first of Ada's photos again, as Ada in a new collection typed
	// into the form: the same face id, a picture of its own. The view
	// follows the enrolment to that collection.
	b.Do("enrol Ada in team-a",
		chromedp.SetValue(chromedp.CSS("#enrol-person"), "Ada Lovelace"),
		chromedp.SetValue(chromedp.CSS("#enrol-collection"), "team-a"),
		chromedp.SetUploadFiles(chromedp.CSS("#enrol-files"), photos[:1]),
		chromedp.Click(chromedp.CSS(`#enrol button[type="submit"]`)),
	)
	b.Wait("Ada enrolled in team-a", `document.getElementById("enrol-result").textContent === "Enrolled 1 face as Ada Lovelace in team-a."`)
	b.Wait("team-a shown", shown("team-a"))
	b.Wait("team-a's thumbnail", thumbnailsShown("Ada Lovelace", 1))
	if got := b.Text("#gallery-count"); got != "1 persons, 1 faces in collection team-a" {
		t.Errorf("team-a count %q", got)
	}
	if got := browsertest.Eval[[]string](b, "collections offered", pickerOptions); !slices.Equal(got, []string{"default", "team-a"}) {
		t.Errorf("picker offers %q, want default first, then team-a", got)
	}
	if got := browsertest.Eval[string](b, "picked", `document.getElementById("collection").value`); got != "team-a" {
		t.Errorf("picker shows %q after enrolling in team-a", got)
	}

	// Back to the default collection with the picker: as it was.
	pick(b, "default")
	b.Wait("default shown", shown("default"))
	b.Wait("default's thumbnails", thumbnailsShown("Ada Lovelace", 2))
	if got := b.Text("#gallery-count"); got != "2 persons, 3 faces in collection default" {
		t.Errorf("default count after enrolling in team-a %q", got)
	}
	screenshot(b, "gallery")

	// Delete the face of Ada's first photo in the default collection: the
	// button asks for a second click. team-a's face of that photo keeps
	// its picture.
	data, err := os.ReadFile(photos[0])
	if err != nil {
		t.Fatal(err)
	}
	shared := galleries.ContentID(data)
	face := fmt.Sprintf(`.person[data-person="Ada Lovelace"] .face[data-face=%q] button`, shared)
	b.Do("delete a face",
		chromedp.Click(chromedp.CSS(face)),
		chromedp.Click(chromedp.CSS(face+".armed")),
	)
	b.Wait("one face left", `document.querySelector('.person[data-person="Ada Lovelace"]')?.dataset.faces === "1"`)
	b.Do("delete Bob",
		chromedp.Click(chromedp.CSS(`.person[data-person="Bob"] header button`)),
		chromedp.Click(chromedp.CSS(`.person[data-person="Bob"] header button.armed`)),
	)
	b.Wait("Bob gone", `document.querySelector('.person[data-person="Bob"]') === null && document.getElementById("gallery-count").textContent.startsWith("1 persons")`)
	thumbsLeft := func() []string {
		t.Helper()
		left, err := e.store.List(ctx, thumbs.Prefix)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(left)
		return left
	}
	var kept string
	for _, k := range thumbsLeft() {
		if strings.HasPrefix(k, thumbs.PersonPrefix(galleries.DefaultCollection, "Ada Lovelace")) {
			kept = k
		}
	}
	if want := []string{kept, thumbs.Key("team-a", "Ada Lovelace", shared)}; kept == "" || !slices.Equal(thumbsLeft(), want) {
		t.Fatalf("thumbnails left %q, want Ada's remaining one in default and hers in team-a %q", thumbsLeft(), want)
	}

	pick(b, "team-a")
	b.Wait("team-a shown again", shown("team-a"))
	b.Wait("team-a's thumbnail kept", thumbnailsShown("Ada Lovelace", 1))
	// Delete Ada from team-a with the purge box: her enrolment's image
	// goes too, and the default collection keeps its picture.
	inputs, err := e.store.List(ctx, job.InputPrefix)
	if err != nil {
		t.Fatal(err)
	}
	b.Do("delete Ada from team-a, purging",
		chromedp.Click(chromedp.CSS("#purge")),
		chromedp.Click(chromedp.CSS(`.person[data-person="Ada Lovelace"] header button`)),
		chromedp.Click(chromedp.CSS(`.person[data-person="Ada Lovelace"] header button.armed`)),
	)
	b.Wait("team-a empty", `document.getElementById("gallery-count").textContent === "0 persons, 0 faces in collection team-a"`)
	if after, err := e.store.List(ctx, job.InputPrefix); err != nil || len(after) != len(inputs)-1 {
		t.Errorf("%d inputs after the purge of %d (%v), want the team-a enrolment's gone", len(after), len(inputs), err)
	}
	if got := thumbsLeft(); !slices.Equal(got, []string{kept}) {
		t.Fatalf("thumbnails left %q, want Ada's in default %q", got, kept)
	}
	b.NoErrors()
}

// pickerOptions lists the collections the picker offers, in order.
const pickerOptions = `[...document.querySelectorAll("#collection option")].map((o) => o.value)`

// pick chooses collection c in the picker, as a click on an option does.
func pick(b *browsertest.Tab, c string) {
	browsertest.Eval[bool](b, "pick "+c, fmt.Sprintf(`(() => {
		const s = document.getElementById("collection");
		s.value = %q;
		s.dispatchEvent(new Event("change", {bubbles: true}));
		return s.value === %[1]q;
	})()`, c))
}

// shown holds once the gallery lists collection c.
func shown(c string) string {
	return fmt.Sprintf(`document.getElementById("persons").dataset.loaded !== undefined && document.getElementById("persons").dataset.collection === %q &&
		document.getElementById("gallery-count").textContent.endsWith(" in collection " + %[1]q)`, c)
}

// thumbnailsShown holds once person shows n thumbnails and every picture
// on the page is a loaded thumbnail.
func thumbnailsShown(person string, n int) string {
	return fmt.Sprintf(`document.querySelectorAll('.person[data-person=%q] img[src^="blob:"]').length === %d &&
		[...document.querySelectorAll('.person img')].every(i => i.complete && i.naturalWidth === 112)`, person, n)
}

// TestConsoleTry recognises a photo with landmarks and checks the picture
// drawn: the boxes in their colours, the landmarks, the table.
func TestConsoleTry(t *testing.T) {
	e := newEnv(t)
	e.startConsoleWorker()
	_, hs := e.server(testConfig())
	b := browsertest.Open(t)
	signIn(b, hs.URL, testKey)
	b.Wait("signed in", `!document.getElementById("tabs").hidden`)
	b.Do("try a photo",
		chromedp.Click(chromedp.CSS(`a[data-tab="try"]`)),
		chromedp.WaitVisible(chromedp.CSS("#try-form")),
		chromedp.Click(chromedp.CSS("#try-landmarks")),
		chromedp.SetUploadFiles(chromedp.CSS("#try-file"), []string{consolePhoto(t, "pair.png")}),
	)
	b.Wait("the drawing", `document.getElementById("try-canvas").dataset.drawn === "2"`)
	if got := b.Text("#try-answer"); got != "2 faces: Ada, unknown" {
		t.Errorf("answer %q", got)
	}
	type drawing struct {
		Landmarks string `json:"landmarks"`
		Width     int    `json:"width"`
		// Colours on the first face's box edge (known: green) and the
		// second's (unknown: amber).
		Known   []int `json:"known"`
		Unknown []int `json:"unknown"`
	}
	d := browsertest.Eval[drawing](b, "read the canvas", `(() => {
		const c = document.getElementById("try-canvas"), x = c.getContext("2d"), s = c.width / 200;
		const px = (X, Y) => [...x.getImageData(Math.round(X * s), Math.round(Y * s), 1, 1).data].slice(0, 3);
		return {landmarks: c.dataset.landmarks, width: c.width, known: px(20, 55), unknown: px(120, 60)};
	})()`)
	if d.Landmarks != "2" || d.Width < 200 {
		t.Errorf("canvas %+v: want both faces' landmarks drawn, at least at full size", d)
	}
	if g := d.Known; len(g) != 3 || g[1] < 150 || g[0] > 100 {
		t.Errorf("known face's box edge is %v, want green", g)
	}
	if a := d.Unknown; len(a) != 3 || a[0] < 200 || a[2] > 80 {
		t.Errorf("unknown face's box edge is %v, want amber", a)
	}
	if got := b.Text("#try-faces tbody"); !strings.Contains(got, "Ada0.312high") || !strings.Contains(got, "unknown0.804medium") {
		t.Errorf("faces table %q", got)
	}
	screenshot(b, "try")
	var res job.Result
	raw := b.Text("#try-json")
	if err := json.Unmarshal([]byte(raw), &res); err != nil || len(res.Faces) != 2 || len(res.Faces[0].Landmarks) != 68 {
		t.Errorf("result shown %q (%v)", raw, err)
	}
	b.NoErrors()
}

// TestConsoleServedStrict: the console's files carry the CSP, and nothing
// else under /console/ is served.
func TestConsoleServedStrict(t *testing.T) {
	e := newEnv(t)
	_, hs := e.server(testConfig())
	for path, ct := range map[string]string{"/console": "text/html", "/console/console.js": "text/javascript", "/console/console.css": "text/css"} {
		r := doAs(t, http.Header{}, http.MethodGet, hs.URL+path, "", nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), ct) ||
			r.header.Get("Content-Security-Policy") != consoleCSP || r.header.Get("ETag") == "" {
			t.Errorf("%s: %d %q CSP %q", path, r.status, r.header.Get("Content-Type"), r.header.Get("Content-Security-Policy"))
		}
	}
	page := doAs(t, http.Header{}, http.MethodGet, hs.URL+"/console", "", nil).body
	for _, inline := range []string{"<script>", "style=", "<style", "onclick", "http://", "https://"} {
		if strings.Contains(page, inline) {
			t.Errorf("the console page holds %q: inline code or an outside reference", inline)
		}
	}
	for _, p := range []string{"/console/index.html", "/console/../server.go", "/console/x.js"} {
		if r := doAs(t, http.Header{}, http.MethodGet, hs.URL+p, "", nil); r.status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.status)
		}
	}
	etag := doAs(t, http.Header{}, http.MethodGet, hs.URL+"/console/console.js", "", nil).header.Get("ETag")
	if r := doAs(t, http.Header{"If-None-Match": {etag}}, http.MethodGet, hs.URL+"/console/console.js", "", nil); r.status != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", r.status)
	}
}
