package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facecloud/facecloud/agents/job"
)

// createCollectionKey runs facecloud keys create with --collections.
func createCollectionKey(t *testing.T, data, scopes, collections string) string {
	t.Helper()
	out, err := exec.Command(binary(t), "keys", "create", "--data", data, "--scopes", scopes, "--collections", collections).Output()
	if err != nil {
		t.Fatalf("facecloud keys create --collections %s: %v", collections, err)
	}
	return strings.TrimSpace(string(out))
}

// multipartFiles is a multipart body with one part per file in field.
func multipartFiles(t *testing.T, field string, files map[string][]byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	}) {
		fw, err := mw.CreateFormFile(field, name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(files[name])
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create("faces/" + name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// postFiles posts files as multipart field "file" with key.
func postFiles(t *testing.T, url, key string, files map[string][]byte) (int, string) {
	t.Helper()
	body, ct := multipartFiles(t, "file", files)
	h := withKey(key)
	h.Set("Content-Type", ct)
	code, _, b := call(t, http.MethodPost, url, h, body)
	return code, b
}

func decode[T any](t *testing.T, what, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v in %q", what, err, body)
	}
	return v
}

// TestFaceAPI runs facecloud local and goes through the face API as a
// client would: the course gallery enrolled through the API into two
// collections (zips and many-image forms, one result per image), searched,
// listed page by page, verified against, detected in, and erased; keys
// limited to one collection can neither read nor change the other; the
// course's POST / still answers "test_00:Paul" byte for byte from the
// default collection; and facecloud api drives the same routes through
// the typed client.
func TestFaceAPI(t *testing.T) {
	c := courseSet(t)
	data := t.TempDir()
	enrollCourse(t, data) // the default collection, for POST /
	// The keys are in the store before the web agent starts, so it knows
	// them from its first load (and, keys existing, makes no admin.key).
	admin, _ := createKey(t, data, "admin")
	keyA := createCollectionKey(t, data, "recognize,enroll,admin", "team-a")
	keyB := createCollectionKey(t, data, "recognize,enroll,admin", "team-b")
	local := start(t, "local", "local", "--addr", "127.0.0.1:0", "--data", data, "--min-workers", "2", "--max-workers", "2", "--max-enroll-images", "100")
	base := local.baseURL(t)
	local.waitLog(t, regexp.MustCompile("(?s)worker ready.*worker ready"), time.Minute)
	for name, key := range map[string]string{"admin": admin, "A": keyA, "B": keyB} {
		if code, _, body := call(t, http.MethodGet, base+"/v1/collections", withKey(key), nil); code != 200 {
			t.Fatalf("key %s made before the start = %d %s", name, code, body)
		}
	}

	// The gallery's photos by person.
	labels, err := readLabels(c.Labels100)
	if err != nil {
		t.Fatal(err)
	}
	byPerson := map[string]map[string][]byte{}
	for stem, person := range labels {
		b, err := os.ReadFile(filepath.Join(c.Gallery100, stem+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		if byPerson[person] == nil {
			byPerson[person] = map[string][]byte{}
		}
		byPerson[person][stem+".jpg"] = b
	}
	persons := slices.Sorted(func(yield func(string) bool) {
		for p := range byPerson {
			if !yield(p) {
				return
			}
		}
	})

	t.Run("enrol", func(t *testing.T) {
		for i, p := range persons {
			files := byPerson[p]
			url := base + "/v1/collections/team-a/persons/" + p + "/faces"
			if i%2 == 0 { // a zip of the person's photos
				files = map[string][]byte{p + ".zip": zipOf(t, byPerson[p])}
			}
			code, body := postFiles(t, url, keyA, files)
			if code != 200 {
				t.Fatalf("enrol %s into team-a = %d %s", p, code, body)
			}
			got := decode[struct {
				Collection, Person string
				Results            []job.Result
			}](t, "enrolment", body)
			if got.Collection != "team-a" || got.Person != p || len(got.Results) != len(byPerson[p]) {
				t.Fatalf("enrolment of %s: %s", p, body)
			}
			for _, r := range got.Results {
				if r.Status != job.StatusDone || r.Answer != p || len(r.Faces) != 1 || r.Faces[0].FaceID == "" || r.Collection != "team-a" {
					t.Fatalf("enrolment result %+v", r)
				}
			}
		}
		// team-b gets one person, with the client's id; enrolling it again
		// (a retry) adds no face.
		p := persons[0]
		var stem string
		for s := range byPerson[p] {
			stem = s
			break
		}
		for range 2 {
			code, body := postFiles(t, base+"/v1/collections/team-b/persons/"+p+"/faces?externalId=crm-42", keyB, map[string][]byte{stem: byPerson[p][stem]})
			if code != 200 || !strings.Contains(body, `"face_id":"crm-42"`) {
				t.Fatalf("enrol with externalId = %d %s", code, body)
			}
		}
		code, _, body := call(t, http.MethodGet, base+"/v1/collections/team-b/persons/"+p+"/faces", withKey(keyB), nil)
		if code != 200 || strings.Count(body, `"id":`) != 1 {
			t.Fatalf("faces of %s in team-b after a retried enrolment = %d %s, want one", p, code, body)
		}
	})

	t.Run("collection rules", func(t *testing.T) {
		img := c.Files[0]
		tests := map[string]struct {
			key, method, path string
			file              string
			want              int
		}{
			"A searches A":              {keyA, "POST", "/v1/collections/team-a/searches", img, 200},
			"A searches B":              {keyA, "POST", "/v1/collections/team-b/searches", img, 403},
			"B lists A":                 {keyB, "GET", "/v1/collections/team-a/persons", "", 403},
			"B enrols into A":           {keyB, "POST", "/v1/collections/team-a/persons/Eve/faces", img, 403},
			"B erases from A":           {keyB, "DELETE", "/v1/collections/team-a/persons/" + persons[1], "", 403},
			"A uses the default (POST)": {keyA, "POST", "/", img, 403},
			"A recognises in default":   {keyA, "POST", "/v1/recognitions", img, 403},
			"A reads the keys":          {keyA, "GET", "/v1/keys", "", 403},
			"A reads the metrics":       {keyA, "GET", "/metrics", "", 403},
			"A verifies against B":      {keyA, "POST", "/v1/verifications?person=" + persons[0] + "&collection=team-b", img, 403},
			"admin lists A":             {admin, "GET", "/v1/collections/team-a/persons", "", 200},
			"admin lists B":             {admin, "GET", "/v1/collections/team-b/persons", "", 200},
			"no key searches":           {"", "POST", "/v1/collections/team-a/searches", img, 401},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				h := http.Header{}
				if tc.key != "" {
					h = withKey(tc.key)
				}
				var code int
				var body string
				if tc.file != "" {
					code, _, body = callFile(t, base+tc.path, h, tc.file)
				} else {
					code, _, body = call(t, tc.method, base+tc.path, h, nil)
				}
				if code != tc.want {
					t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, code, body, tc.want)
				}
				if code == 403 && !strings.Contains(body, "collection") {
					t.Fatalf("refusal does not say why: %s", body)
				}
			})
		}
		// A key sees only its collections.
		_, _, body := call(t, http.MethodGet, base+"/v1/collections", withKey(keyA), nil)
		got := decode[struct{ Collections []struct{ Name string } }](t, "collections", body)
		if len(got.Collections) != 1 || got.Collections[0].Name != "team-a" {
			t.Fatalf("key A lists collections %s, want team-a only", body)
		}
		_, _, body = call(t, http.MethodGet, base+"/v1/collections", withKey(admin), nil)
		if !strings.Contains(body, `"team-a"`) || !strings.Contains(body, `"team-b"`) || !strings.Contains(body, `"default"`) {
			t.Fatalf("admin lists %s, want default, team-a and team-b", body)
		}
	})

	t.Run("listing pages", func(t *testing.T) {
		var names []string
		after := ""
		for pages := 0; ; pages++ {
			code, _, body := call(t, http.MethodGet, base+"/v1/collections/team-a/persons?limit=3&after="+after, withKey(keyA), nil)
			if code != 200 || pages > 10 {
				t.Fatalf("persons page = %d %s", code, body)
			}
			p := decode[struct {
				Persons []struct {
					Name  string
					Faces int
				}
				Next string
			}](t, "persons", body)
			for _, x := range p.Persons {
				names = append(names, x.Name)
			}
			if p.Next == "" {
				break
			}
			after = p.Next
		}
		if !slices.Equal(names, persons) {
			t.Fatalf("persons over the pages %v, want %v", names, persons)
		}
		code, _, body := call(t, http.MethodGet, base+"/v1/collections/team-a/persons/"+persons[1]+"/faces?limit=1", withKey(keyA), nil)
		f := decode[struct {
			Faces []struct{ ID, Source string }
			Next  string
		}](t, "faces", body)
		if code != 200 || len(f.Faces) != 1 || f.Faces[0].Source == "" || (f.Next == "") != (len(distinctPhotos(byPerson[persons[1]])) == 1) {
			t.Fatalf("faces page = %d %s", code, body)
		}
	})

	t.Run("search", func(t *testing.T) {
		for _, file := range c.Files[:20] {
			code, _, body := callFile(t, base+"/v1/collections/team-a/searches?limit=3&wait=60s", withKey(keyA), file)
			if code != 200 {
				t.Fatalf("search %s = %d %s", stem(file), code, body)
			}
			r := decode[job.Result](t, "search", body)
			want := c.Want[stem(file)]
			if r.Kind != job.KindSearch || r.Answer != want || len(r.Faces) != 1 || len(r.Faces[0].Candidates) != 3 || r.Faces[0].Candidates[0].Person != want {
				t.Fatalf("search %s: %s, want %s first", stem(file), body, want)
			}
			cs := r.Faces[0].Candidates
			for i := 1; i < len(cs); i++ {
				if cs[i].Distance < cs[i-1].Distance || cs[i].Similarity > cs[i-1].Similarity {
					t.Fatalf("candidates out of order: %+v", cs)
				}
			}
		}
		// A tight threshold names no one; out of bounds is refused.
		code, _, body := callFile(t, base+"/v1/collections/team-a/searches?threshold=0.2&wait=60s", withKey(keyA), c.Files[0])
		if r := decode[job.Result](t, "search", body); code != 200 || r.Faces[0].Distance > 0.2 && r.Answer != "unknown" {
			t.Fatalf("search at threshold 0.2 = %d %s", code, body)
		}
		if code, _, body := callFile(t, base+"/v1/collections/team-a/searches?threshold=1.5", withKey(keyA), c.Files[0]); code != 400 {
			t.Fatalf("threshold 1.5 = %d %s, want 400", code, body)
		}
	})

	t.Run("detect", func(t *testing.T) {
		demo := filepath.Join(modelsDir(t), "demo", "sample1.jpg")
		code, _, body := callFile(t, base+"/v1/detections?wait=60s", withKey(keyA), demo)
		r := decode[job.Result](t, "detection", body)
		if code != 200 || r.Kind != job.KindDetect || len(r.Detections) < 2 || r.Answer != fmt.Sprintf("%d faces", len(r.Detections)) {
			t.Fatalf("detection = %d %.300s", code, body)
		}
		for _, d := range r.Detections {
			if len(d.Landmarks) != 68 || d.Score <= 0 || d.Score > 1 || d.Box.W <= 0 {
				t.Fatalf("detection %+v", d)
			}
		}
	})

	t.Run("verify", func(t *testing.T) {
		var same []string
		for _, f := range c.Files {
			if c.Want[stem(f)] == persons[2] && len(same) < 2 {
				same = append(same, f)
			}
		}
		a, _ := os.ReadFile(same[0])
		b, _ := os.ReadFile(same[1])
		body, ct := multipartFiles(t, "file", map[string][]byte{"a.jpg": a, "b.jpg": b})
		h := withKey(keyA)
		h.Set("Content-Type", ct)
		code, _, out := call(t, http.MethodPost, base+"/v1/verifications?wait=60s", h, body)
		r := decode[job.Result](t, "verification", out)
		if code != 200 || r.Verification == nil || !r.Verification.Match || len(r.Faces) != 2 || r.Answer != "match" {
			t.Fatalf("verification of two photos of %s = %d %s", persons[2], code, out)
		}
		code, _, out = callFile(t, base+"/v1/verifications?wait=60s&collection=team-a&person="+persons[2], withKey(keyA), same[0])
		r = decode[job.Result](t, "verification", out)
		if code != 200 || r.Verification == nil || !r.Verification.Match || r.Verification.Person != persons[2] || r.Verification.FaceID == "" {
			t.Fatalf("verification against %s = %d %s", persons[2], code, out)
		}
		if code, _, out := callFile(t, base+"/v1/verifications?collection=team-a&person=Nobody", withKey(keyA), same[0]); code != 404 {
			t.Fatalf("verification against an unknown person = %d %s, want 404", code, out)
		}
		// The same pair asked at high quality: the course's 64 px crops are
		// below it, so no match, with the faces named "low quality".
		body, ct = multipartFiles(t, "file", map[string][]byte{"a.jpg": a, "b.jpg": b})
		h.Set("Content-Type", ct)
		code, _, out = call(t, http.MethodPost, base+"/v1/verifications?wait=60s&quality=high", h, body)
		r = decode[job.Result](t, "verification", out)
		if code != 200 || r.Verification == nil || r.Verification.Match || !r.Verification.LowQuality || r.Answer != "no match" || r.Faces[0].Name != job.LowQuality {
			t.Fatalf("verification of two photos of %s at quality high = %d %s", persons[2], code, out)
		}
		if code, _, out := callFile(t, base+"/v1/verifications?quality=best&person="+persons[2]+"&collection=team-a", withKey(keyA), same[0]); code != 400 {
			t.Fatalf("verification at quality=best = %d %s, want 400", code, out)
		}
	})

	t.Run("course contract", func(t *testing.T) {
		for _, f := range c.Files[:10] {
			code, _, body := callFile(t, base+"/", withKey(admin), f)
			if want := stem(f) + ":" + c.Want[stem(f)]; code != 200 || body != want {
				t.Fatalf("POST / %s = %d %q, want %q byte for byte", stem(f), code, body, want)
			}
		}
	})

	t.Run("facecloud api", func(t *testing.T) {
		out, err := exec.Command(binary(t), "api", "--url", base+"/", "--api-key", keyA, "persons", "team-a").CombinedOutput()
		if err != nil {
			t.Fatalf("facecloud api persons: %v\n%s", err, out)
		}
		var ps []struct{ Name string }
		if err := json.Unmarshal(out, &ps); err != nil || len(ps) != len(persons) {
			t.Fatalf("facecloud api persons printed %s", out)
		}
		out, err = exec.Command(binary(t), "api", "--url", base+"/", "--api-key", keyA, "search", "team-a", c.Files[3], "--limit", "2").CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"candidates"`) {
			t.Fatalf("facecloud api search: %v\n%s", err, out)
		}
		out, err = exec.Command(binary(t), "api", "--url", base+"/", "--api-key", keyA, "persons", "team-b").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "HTTP 403") {
			t.Fatalf("facecloud api with a key for team-a on team-b: %v\n%s", err, out)
		}
	})

	t.Run("erase", func(t *testing.T) {
		victim := persons[4]
		code, _, body := call(t, http.MethodGet, base+"/v1/collections/team-a/persons/"+victim+"/faces", withKey(keyA), nil)
		faces := decode[struct {
			Faces []struct{ ID, Thumbnail string }
		}](t, "faces", body).Faces
		if code != 200 || len(faces) == 0 {
			t.Fatalf("faces of %s = %d %s", victim, code, body)
		}
		// The victim's photos are enrolled in the default collection too,
		// under the same face ids (a hash of the image): each collection
		// keeps its own thumbnails, so erasing team-a's leaves the
		// default's.
		code, _, body = call(t, http.MethodGet, base+"/v1/gallery/"+victim, withKey(admin), nil)
		inDefault := decode[struct {
			Faces []struct{ ID, Thumbnail string }
		}](t, "faces", body).Faces
		if code != 200 || len(inDefault) == 0 {
			t.Fatalf("faces of %s in the default collection = %d %s", victim, code, body)
		}
		thumbnail := func(key, path string) int {
			t.Helper()
			code, h, body := call(t, http.MethodGet, base+path, withKey(key), nil)
			if code == 200 && (h.Get("Content-Type") != "image/jpeg" || len(body) == 0) {
				t.Fatalf("GET %s = %s of %d bytes, want a JPEG", path, h.Get("Content-Type"), len(body))
			}
			return code
		}
		shared := 0
		for _, f := range faces {
			if want := "/v1/collections/team-a/persons/" + victim + "/faces/" + f.ID + "/thumbnail"; f.Thumbnail != want {
				t.Fatalf("team-a face %s lists thumbnail %q, want %q", f.ID, f.Thumbnail, want)
			}
			if code := thumbnail(keyA, f.Thumbnail); code != 200 {
				t.Fatalf("GET %s = %d", f.Thumbnail, code)
			}
			for _, d := range inDefault {
				if d.ID == f.ID {
					shared++
				}
			}
		}
		if shared == 0 {
			t.Fatalf("no face of %s has the same id in team-a and default: the check below would prove nothing", victim)
		}
		code, _, body = call(t, http.MethodDelete, base+"/v1/collections/team-a/persons/"+victim+"/faces/"+faces[0].ID, withKey(keyA), nil)
		if code != 200 || !strings.Contains(body, `"faces":1`) {
			t.Fatalf("delete one face = %d %s", code, body)
		}
		// Each worker logs its view of team-a whenever a refresh changes
		// it; the log from here on tells when both have dropped the victim.
		local.syncLog(t)
		from := len(local.out.String())
		code, _, body = call(t, http.MethodDelete, base+"/v1/collections/team-a/persons/"+victim+"?purge=1", withKey(keyA), nil)
		if code != 200 || !strings.Contains(body, `"collection":"team-a"`) {
			t.Fatalf("erase %s = %d %s", victim, code, body)
		}
		// Gone from the listing, from every search, and from the store's
		// team-a objects; the default collection keeps its own faces.
		if code, _, body := call(t, http.MethodGet, base+"/v1/collections/team-a/persons/"+victim+"/faces", withKey(keyA), nil); code != 404 {
			t.Fatalf("faces of the erased %s = %d %s", victim, code, body)
		}
		// A face's id comes from its image: a person has a face per
		// distinct photo.
		left := 0
		for _, p := range persons {
			if p != victim {
				left += len(distinctPhotos(byPerson[p]))
			}
		}
		dropped := regexp.MustCompile(fmt.Sprintf(`msg="gallery loaded".* worker=(\S+) collection=team-a faces=%d `, left))
		eventually(t, time.Minute, "both workers to log team-a without "+victim, func() bool {
			local.syncLog(t)
			workers := map[string]bool{}
			for _, m := range dropped.FindAllStringSubmatch(local.out.String()[from:], -1) {
				workers[m[1]] = true
			}
			return len(workers) >= 2
		})
		for _, f := range c.Files {
			if c.Want[stem(f)] != victim {
				continue
			}
			code, _, body := callFile(t, base+"/v1/collections/team-a/searches?limit=10&wait=60s", withKey(keyA), f)
			if code != 200 || strings.Contains(body, `"person":"`+victim+`"`) {
				t.Fatalf("search of %s after the erasure = %d %s", stem(f), code, body)
			}
		}
		for _, dir := range []string{filepath.Join("collections", "team-a"), filepath.Join("thumbs", "team-a")} {
			if storeMentions(t, filepath.Join(data, "store", dir), victim) {
				t.Fatalf("an object of %s still names %s", dir, victim)
			}
		}
		code, _, body = call(t, http.MethodGet, base+"/v1/gallery/"+victim, withKey(admin), nil)
		if code != 200 {
			t.Fatalf("the default collection lost %s too: %d %s", victim, code, body)
		}
		for _, f := range inDefault {
			if code := thumbnail(admin, f.Thumbnail); f.Thumbnail == "" || code != 200 {
				t.Fatalf("default face %s of %s: thumbnail %q = %d after the erasure in team-a, want it kept", f.ID, victim, f.Thumbnail, code)
			}
		}
	})
	local.stop(t, 2*time.Minute)
}

// modelsDir is where facecloud keeps the model (and its demo photos).
func modelsDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(binary(t), "models", "path").Output()
	if err != nil {
		t.Fatalf("facecloud models path: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// distinctPhotos counts the different images among files.
func distinctPhotos(files map[string][]byte) map[string]bool {
	out := map[string]bool{}
	for _, b := range files {
		out[string(b)] = true
	}
	return out
}
