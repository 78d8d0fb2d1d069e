package privacy

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/face"
	"github.com/facecloud/facecloud/agents/gallery"
	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/platform"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
	"github.com/facecloud/facecloud/agents/thumbs"
)

func fileStore(t *testing.T) platform.Store {
	t.Helper()
	st, err := blobstore.OpenURL(context.Background(), &url.URL{Scheme: "file", Path: filepath.ToSlash(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// idAt is a request id made at t.
func idAt(t time.Time) string {
	u := uuid.Must(uuid.NewV7())
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(u[0:6], ms[2:8])
	return u.String()
}

// deployment is three separate stores, as on AWS, filled with requests.
type deployment struct {
	t  testing.TB
	st Stores
}

func newDeployment(t *testing.T) *deployment {
	return started(t, &deployment{t: t, st: Stores{Inputs: fileStore(t), Outputs: fileStore(t), Gallery: fileStore(t)}})
}

// started runs the gallery's compactor for d, as the scaler of a
// deployment does: an erasure waits for it.
func started(t *testing.T, d *deployment) *deployment {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&gallery.Compactor{Store: d.st.Gallery, Interval: 20 * time.Millisecond}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// view is the default collection as a web host follows it.
func (d *deployment) view() Faces {
	d.t.Helper()
	return d.viewOf(gallery.DefaultCollection)
}

// viewOf is collection c as a web host follows it.
func (d *deployment) viewOf(c string) Faces {
	d.t.Helper()
	f := gallery.NewIndexFollower(d.st.Gallery)
	if _, err := f.Refresh(context.Background()); err != nil {
		d.t.Fatal(err)
	}
	return f.View(c)
}

// descriptor is a valid descriptor, different for each n.
func descriptor(n int) face.Descriptor {
	var d face.Descriptor
	d[n%128] = 1
	return d
}

var faceCount int

func (d *deployment) put(st platform.Store, key, data string) {
	d.t.Helper()
	if err := st.Put(context.Background(), key, []byte(data), ""); err != nil {
		d.t.Fatal(err)
	}
}

// request stores what a finished request leaves: its image (whose bytes
// name whose face it is), its Result and, for recognitions, the course's
// answer object.
func (d *deployment) request(id, name string, faces ...string) {
	d.t.Helper()
	d.put(d.st.Inputs, job.InputKey(id), "image of "+strings.Join(faces, "+"))
	res := job.Result{V: job.Version, ID: id, Name: name, Status: job.StatusDone, Answer: "no face"}
	for _, f := range faces {
		res.Faces = append(res.Faces, job.Face{Name: f})
	}
	if len(faces) > 0 {
		res.Answer = faces[0]
	}
	b, _ := json.Marshal(res)
	d.put(d.st.Outputs, job.ResultKey(id), string(b))
	if k, ok := job.AnswerKey(name); ok {
		d.put(d.st.Outputs, k, res.Answer)
	}
}

// photoName is the file name of enrolment id's image: its answer object's
// key. Twelve of the id's random hex digits, so two enrolments of a test
// never share one (four did, once in some 65,000 pairs, and the erasure of
// one then took the other's answer object with it).
func photoName(id string) string { return "photo-" + id[len(id)-12:] }

// enrol stores what an enrolment through the API leaves: the request,
// a face in the default collection's log, whose id is the image's, and
// the face's thumbnail.
func (d *deployment) enrol(id, person string) string {
	d.t.Helper()
	d.request(id, photoName(id), person)
	faceCount++
	fid := fmt.Sprintf("face%04d", faceCount)
	d.face(gallery.DefaultCollection, person, fid, id)
	return fid
}

// face adds person's face fid to collection c with its thumbnail, as a
// worker's enrolment does (request names the enrol request, if any).
func (d *deployment) face(c, person, fid, request string) {
	d.t.Helper()
	faceCount++
	if err := gallery.AddFace(context.Background(), d.st.Gallery, c, gallery.Entry{Person: person, ID: fid, Request: request, Descriptor: descriptor(faceCount)}); err != nil {
		d.t.Fatal(err)
	}
	d.put(d.st.Gallery, thumbs.Key(c, person, fid), "picture of "+person)
}

// all lists every object of every store with its content.
func (d *deployment) all() map[string]string {
	d.t.Helper()
	out := map[string]string{}
	for name, st := range map[string]platform.Store{"inputs": d.st.Inputs, "outputs": d.st.Outputs, "gallery": d.st.Gallery} {
		keys, err := st.List(context.Background(), "")
		if err != nil {
			d.t.Fatal(err)
		}
		for _, k := range keys {
			b, err := st.Get(context.Background(), k)
			if errors.Is(err, platform.ErrNotFound) {
				continue // folded into a snapshot by the running compactor since the listing
			}
			if err != nil {
				d.t.Fatal(err)
			}
			out[name+":"+k] = string(b)
		}
	}
	return out
}

// TestDeletePersonPurge erases Paula from a deployment that also holds
// Paul (a name Paula's starts with) and Ann: afterwards no object of any
// store names Paula or holds her image, and everything of the others stays.
func TestDeletePersonPurge(t *testing.T) {
	testPurge(t, newDeployment(t))
}

// TestDeletePersonPurgeS3 is the same erasure on S3 stores (moto): the
// input, output and gallery stores as three buckets.
func TestDeletePersonPurgeS3(t *testing.T) {
	ep := awstest.Endpoint(t)
	ctx := context.Background()
	cfg := awstest.Config(ep)
	names := awstest.Names(t)
	open := func(bucket string) platform.Store {
		awstest.Must(t, awstest.CreateBucket(ctx, cfg, bucket))
		st, err := blobstore.OpenS3(ctx, cfg, blobstore.S3Config{Bucket: bucket})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	testPurge(t, started(t, &deployment{t: t, st: Stores{Inputs: open(names.InputBucket), Outputs: open(names.OutputBucket), Gallery: open(names.ArtifactsBucket)}}))
}

func testPurge(t *testing.T, d *deployment) {
	ctx := context.Background()
	now := time.Now()
	d.enrol(idAt(now.Add(-3*time.Hour)), "Paula")
	d.enrol(idAt(now.Add(-3*time.Hour)), "Paula")
	d.enrol(idAt(now.Add(-3*time.Hour)), "Paul")
	// Enrolled from a file by an earlier version: a legacy entry.
	if err := gallery.PutLegacy(ctx, d.st.Gallery, gallery.Entry{Person: "Paula", ID: "0123456789abcdef0123", Descriptor: descriptor(99)}); err != nil {
		t.Fatal(err)
	}
	// ... with its thumbnail kept by face id alone, as earlier versions did.
	d.put(d.st.Gallery, thumbs.LegacyKey("0123456789abcdef0123"), "picture of Paula")
	d.request(idAt(now.Add(-2*time.Hour)), "test_00", "Paula")
	d.request(idAt(now.Add(-2*time.Hour)), "group", "Ann", "Paula") // second face
	d.request(idAt(now.Add(-time.Hour)), "test_01", "Paul")
	d.request(idAt(now.Add(-time.Hour)), "test_02", "Ann")
	d.request(idAt(now), "test_03") // no face
	before := d.all()

	rep, err := DeletePerson(ctx, d.st, d.view(), gallery.DefaultCollection, "Paula", true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Faces != 3 || rep.Thumbnails != 3 || rep.Results != 4 || rep.Inputs != 4 || rep.Answers != 4 {
		t.Errorf("report %+v, want 3 faces and thumbnails and 4 results, inputs and answer objects", rep)
	}
	after := d.all()
	for k, v := range after {
		if strings.Contains(k, "Paula") || strings.Contains(v, "Paula") {
			t.Errorf("%s still names Paula: %s", k, v)
		}
	}
	for k, v := range before {
		// The group photo's answer object says "Ann", but the request it
		// answers holds Paula's face: it goes with the request. The
		// gallery's objects are rewritten by the compaction.
		if k != "outputs:group" && !strings.HasPrefix(k, "gallery:") && !strings.Contains(k, "Paula") && !strings.Contains(v, "Paula") && after[k] != v {
			t.Errorf("%s (%s) was deleted with Paula's data", k, v)
		}
	}
	if v := d.view(); len(v.Faces("Paul")) != 1 {
		t.Errorf("Paul has %d faces after Paula's erasure, want 1", len(v.Faces("Paul")))
	} else if k := thumbs.Key(gallery.DefaultCollection, "Paul", v.Faces("Paul")[0].ID); after["gallery:"+k] != "picture of Paul" {
		t.Errorf("Paul's thumbnail %s is gone with Paula's", k)
	}
	// Run again: nothing left to delete, no error.
	rep, err = DeletePerson(ctx, d.st, d.view(), gallery.DefaultCollection, "Paula", true, Options{})
	if err != nil || rep.Faces+rep.Results+rep.Inputs+rep.Answers != 0 {
		t.Fatalf("second erasure = %+v, %v; want nothing deleted", rep, err)
	}
}

// TestDeletePersonWithoutPurge deletes the gallery entries only.
func TestDeletePersonWithoutPurge(t *testing.T) {
	d := newDeployment(t)
	id := idAt(time.Now())
	d.enrol(id, "Zoe")
	rep, err := DeletePerson(context.Background(), d.st, d.view(), gallery.DefaultCollection, "Zoe", false, Options{})
	if err != nil || rep.Faces != 1 || rep.Results+rep.Inputs != 0 {
		t.Fatalf("DeletePerson = %+v, %v; want one face only", rep, err)
	}
	all := d.all()
	for k, v := range all {
		if strings.HasPrefix(k, "gallery:") && strings.Contains(v, "Zoe") {
			t.Errorf("gallery object %s still holds Zoe", k)
		}
	}
	if _, ok := all["inputs:"+job.InputKey(id)]; !ok {
		t.Error("enrolment image deleted without purge")
	}
}

func TestDeleteFaceAndRecognition(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t)
	keep, gone, rec := idAt(time.Now()), idAt(time.Now()), idAt(time.Now())
	d.enrol(keep, "Zoe")
	goneFace := d.enrol(gone, "Zoe")
	d.request(rec, "test_07", "Zoe")
	if rep, err := DeleteFace(ctx, d.st, d.view(), gallery.DefaultCollection, "Zoe", goneFace, true, Options{}); err != nil || rep.Faces != 1 || rep.Inputs != 1 || rep.Results != 1 {
		t.Fatalf("DeleteFace = %+v, %v", rep, err)
	}
	if rep, err := DeleteRecognition(ctx, d.st, rec); err != nil || rep.Inputs != 1 || rep.Results != 1 || rep.Answers != 1 {
		t.Fatalf("DeleteRecognition = %+v, %v", rep, err)
	}
	var left []string
	for k := range d.all() {
		if !strings.HasPrefix(k, "gallery:") {
			left = append(left, k)
		}
	}
	slices.Sort(left)
	if v := d.view(); len(v.Faces("Zoe")) != 1 {
		t.Errorf("Zoe has %d faces, want the one kept", len(v.Faces("Zoe")))
	}
	want := []string{"inputs:" + job.InputKey(keep), "outputs:" + photoName(keep), "outputs:" + job.ResultKey(keep)}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("left %q, want %q", left, want)
	}
	for name, err := range map[string]error{
		"bad person": func() error {
			_, err := DeletePerson(ctx, d.st, d.view(), gallery.DefaultCollection, "a/b", true, Options{})
			return err
		}(),
		"bad face id": func() error {
			_, err := DeleteFace(ctx, d.st, d.view(), gallery.DefaultCollection, "Zoe", "../x", true, Options{})
			return err
		}(),
		"bad collection": func() error { _, err := DeletePerson(ctx, d.st, d.view(), "a b", "Zoe", true, Options{}); return err }(),
		"bad id":         func() error { _, err := DeleteRecognition(ctx, d.st, "123"); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestThumbnailsOfOnePhoto enrols one photo (one face id) as Ada in two
// collections and as Bob: erasing one of these faces leaves the others'
// thumbnails, and erasing them all leaves none, nor the thumbnail an
// earlier version kept by face id alone.
func TestThumbnailsOfOnePhoto(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t)
	const same, old = "0123456789abcdef0123", "00000000000000000001"
	d.face("team-a", "Ada", same, "")
	d.face(gallery.DefaultCollection, "Ada", same, "")
	d.face(gallery.DefaultCollection, "Bob", same, "")
	d.face(gallery.DefaultCollection, "Ada", old, "")
	if err := d.st.Gallery.Delete(ctx, thumbs.Key(gallery.DefaultCollection, "Ada", old)); err != nil {
		t.Fatal(err)
	}
	d.put(d.st.Gallery, thumbs.LegacyKey(old), "picture of Ada")
	left := func() []string {
		t.Helper()
		keys, err := d.st.Gallery.List(ctx, thumbs.Prefix)
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	steps := []struct {
		name  string
		erase func() (Report, error)
		count int
		left  []string
	}{
		{"Ada's face in team-a", func() (Report, error) {
			return DeleteFace(ctx, d.st, d.viewOf("team-a"), "team-a", "Ada", same, false, Options{})
		}, 1, []string{thumbs.LegacyKey(old), thumbs.Key(gallery.DefaultCollection, "Ada", same), thumbs.Key(gallery.DefaultCollection, "Bob", same)}},
		{"Bob in default", func() (Report, error) {
			return DeletePerson(ctx, d.st, d.view(), gallery.DefaultCollection, "Bob", false, Options{})
		}, 1, []string{thumbs.LegacyKey(old), thumbs.Key(gallery.DefaultCollection, "Ada", same)}},
		{"Ada in default", func() (Report, error) {
			return DeletePerson(ctx, d.st, d.view(), gallery.DefaultCollection, "Ada", false, Options{})
		}, 2, nil},
	}
	for _, s := range steps {
		rep, err := s.erase()
		if err != nil || rep.Thumbnails != s.count {
			t.Fatalf("erase %s = %+v, %v; want %d thumbnails deleted", s.name, rep, err, s.count)
		}
		got := left()
		slices.Sort(got)
		slices.Sort(s.left)
		if !slices.Equal(got, s.left) {
			t.Fatalf("after erasing %s the thumbnails are %q, want %q", s.name, got, s.left)
		}
	}
}

// TestSweep expires by the age in the id: older objects go, younger ones
// and keys without a request id stay.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	old, young := idAt(now.Add(-8*24*time.Hour)), idAt(now.Add(-6*24*time.Hour))
	for _, k := range []string{job.InputKey(old), job.InputKey(young), "inputs/not-an-id", job.ResultKey(old)} {
		if err := st.Put(ctx, k, []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	r := Rule{Store: st, Prefix: job.InputPrefix, MaxAge: DefaultInputRetention}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := Sweep(ctx, r, now)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	left, _ := st.List(ctx, "")
	want := []string{job.InputKey(young), "inputs/not-an-id", job.ResultKey(old)}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("left %q, want %q", left, want)
	}
}

func TestRuleValidate(t *testing.T) {
	st := fileStore(t)
	tests := map[string]struct {
		r    Rule
		want string
	}{
		"no store":  {Rule{Prefix: job.InputPrefix, MaxAge: time.Hour}, "without a store"},
		"gallery":   {Rule{Store: st, Prefix: "gallery/", MaxAge: time.Hour}, "want inputs/"},
		"too short": {Rule{Store: st, Prefix: job.InputPrefix, MaxAge: time.Minute}, "out of range 1h"},
		"too long":  {Rule{Store: st, Prefix: job.ResultPrefix, MaxAge: 11 * 365 * 24 * time.Hour}, "out of range"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.r.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// BenchmarkPurge measures a purge among 2000 stored Results in a file
// store beside its reference, reading every Result one after another (what
// any purge without an index must at least do): the ratio shows what the
// parallel reads and the deletes add or save.
func BenchmarkPurge(b *testing.B) {
	const results = 2000
	fill := func(b *testing.B) *deployment {
		b.Helper()
		d := &deployment{t: b, st: Stores{Inputs: fileStoreB(b), Outputs: fileStoreB(b), Gallery: fileStoreB(b)}}
		for i := range results {
			name := "Ann"
			if i%100 == 0 {
				name = "Paula"
			}
			d.request(idAt(time.Now()), fmt.Sprintf("test_%04d", i), name)
		}
		return d
	}
	ctx := context.Background()
	b.Run("reference: read every result", func(b *testing.B) {
		d := fill(b)
		b.ResetTimer()
		for b.Loop() {
			keys, _ := d.st.Outputs.List(ctx, job.ResultPrefix)
			for _, k := range keys {
				if _, err := d.st.Outputs.Get(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*results), "ns/result")
	})
	b.Run("purge", func(b *testing.B) {
		d := fill(b)
		b.ResetTimer()
		for b.Loop() {
			// After the first loop nothing names Paula: the later loops
			// measure the scan, which is the cost that grows with the store.
			if _, err := DeletePerson(ctx, d.st, gallery.ViewOf(gallery.DefaultCollection, nil), gallery.DefaultCollection, "Paula", true, Options{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*results), "ns/result")
	})
}

func fileStoreB(b *testing.B) platform.Store {
	st, err := blobstore.OpenURL(context.Background(), &url.URL{Scheme: "file", Path: filepath.ToSlash(b.TempDir())})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}
