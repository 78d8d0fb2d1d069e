package job

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestRequestVersions(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	base := NewRequest(NewID(), "test_00", false, now)
	tests := map[string]struct {
		req     Request
		wantErr string
	}{
		"version 1 without reply_to":      {req: base},
		"version 2 with reply_to":         {req: base.WithReplyTo("https://sqs.us-east-1.amazonaws.com/123456789012/fc-reply-h1")},
		"WithReplyTo empty stays 1":       {req: base.WithReplyTo("")},
		"reply_to at version 1":           {req: func() Request { r := base; r.ReplyTo = "x"; return r }(), wantErr: "needs schema version 2"},
		"version 2 without reply_to":      {req: func() Request { r := base; r.V = VersionReplyTo; return r }(), wantErr: "reply_to must be"},
		"reply_to with a space":           {req: base.WithReplyTo("http://a b"), wantErr: "printable ASCII"},
		"reply_to too long":               {req: base.WithReplyTo(strings.Repeat("x", MaxReplyToBytes+1)), wantErr: "reply_to must be"},
		"version 3 with quality":          {req: base.WithQuality("high")},
		"version 3 with quality, reply":   {req: base.WithReplyTo("https://sqs.example/fc-reply-h1").WithQuality("none")},
		"WithQuality empty keeps 2":       {req: base.WithReplyTo("https://sqs.example/fc-reply-h1").WithQuality("")},
		"quality at version 2":            {req: func() Request { r := base.WithReplyTo("x"); r.Quality = "low"; return r }(), wantErr: "needs schema version 3"},
		"unknown quality":                 {req: base.WithQuality("AUTO"), wantErr: "must be none, low, medium or high"},
		"version 3 without quality":       {req: func() Request { r := base; r.V = VersionQuality; return r }()},
		"version 3 with landmarks":        {req: base.WithLandmarks(true)},
		"version 3 with both":             {req: base.WithLandmarks(true).WithReplyTo("https://sqs.us-east-1.amazonaws.com/123456789012/fc-reply-h1")},
		"landmarks off again":             {req: base.WithLandmarks(true).WithLandmarks(false)},
		"landmarks at version 1":          {req: func() Request { r := base; r.Landmarks = true; return r }(), wantErr: "need schema version 3"},
		"landmarks of an enrolment":       {req: func() Request { r := base.WithLandmarks(true); r.Kind, r.Person = KindEnroll, "Ada"; return r }(), wantErr: "landmarks is not for enroll requests"},
		"version 4":                       {req: func() Request { r := base; r.V = 4; return r }(), wantErr: "version 4 not supported"},
		"version 0 (field missing, old?)": {req: func() Request { r := base; r.V = 0; return r }(), wantErr: "version 0 not supported"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Encode error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got Request
			if err := Decode(b, &got); err != nil {
				t.Fatal(err)
			}
			if got != tc.req {
				t.Fatalf("round trip %+v, want %+v", got, tc.req)
			}
			if tc.req.ReplyTo == "" && strings.Contains(string(b), "reply_to") {
				t.Fatalf("a request without reply_to is encoded with the field: %s", b)
			}
			if tc.req.Quality == "" && strings.Contains(string(b), "quality") {
				t.Fatalf("a request without quality is encoded with the field: %s", b)
			}
		})
	}
}

// TestVersion1WireForm pins the wire form an earlier build
// reads: a version 1 request is exactly what it wrote.
func TestVersion1WireForm(t *testing.T) {
	r := NewRequest("0190f0e8-7a3c-7def-8000-000000000001", "test_00", false, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	b, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"0190f0e8-7a3c-7def-8000-000000000001","name":"test_00","input":"inputs/0190f0e8-7a3c-7def-8000-000000000001","sent":"2025-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b, want)
	}
}

// TestRequestKinds checks which fields each kind of request takes.
func TestRequestKinds(t *testing.T) {
	base := NewRequest(NewID(), "img", false, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	// with sets fields, then the schema version they need, as the web
	// agent does.
	with := func(f func(*Request)) Request { r := base; f(&r); return r.WithQuality(r.Quality) }
	tests := map[string]struct {
		req     Request
		wantErr string
	}{
		"recognize":                 {req: base},
		"recognize with threshold":  {req: with(func(r *Request) { r.Threshold = 0.5 })},
		"threshold too low":         {req: with(func(r *Request) { r.Threshold = 0.1 }), wantErr: "threshold 0.1 out of range 0.2..1"},
		"threshold NaN":             {req: with(func(r *Request) { r.Threshold = math.NaN() }), wantErr: "out of range"},
		"recognize with person":     {req: with(func(r *Request) { r.Person = "Ada" }), wantErr: "person is not for recognize"},
		"enrol":                     {req: with(func(r *Request) { r.Kind, r.Person, r.Collection, r.FaceID = KindEnroll, "Ada", "team-a", "ext-1" })},
		"enrol without person":      {req: with(func(r *Request) { r.Kind = KindEnroll }), wantErr: "person name"},
		"enrol with bad face id":    {req: with(func(r *Request) { r.Kind, r.Person, r.FaceID = KindEnroll, "Ada", "a/b" }), wantErr: "face id"},
		"enrol with bad collection": {req: with(func(r *Request) { r.Kind, r.Person, r.Collection = KindEnroll, "Ada", "-x" }), wantErr: "collection name"},
		"search":                    {req: with(func(r *Request) { r.Kind, r.Collection, r.Limit, r.Threshold = KindSearch, "c", 10, 0.4 })},
		"search limit too large":    {req: with(func(r *Request) { r.Kind, r.Limit = KindSearch, 101 }), wantErr: "limit 101"},
		"limit on a recognition":    {req: with(func(r *Request) { r.Limit = 3 }), wantErr: "limit is not for recognize"},
		"detect":                    {req: with(func(r *Request) { r.Kind = KindDetect })},
		"detect with threshold":     {req: with(func(r *Request) { r.Kind, r.Threshold = KindDetect, 0.5 }), wantErr: "threshold is not for detect"},
		"verify two images":         {req: with(func(r *Request) { r.Kind, r.Input2 = KindVerify, "inputs/x" })},
		"verify against a person":   {req: with(func(r *Request) { r.Kind, r.Person, r.Collection = KindVerify, "Ada", "c" })},
		"verify with neither":       {req: with(func(r *Request) { r.Kind = KindVerify }), wantErr: "person name"},
		"verify with both":          {req: with(func(r *Request) { r.Kind, r.Person, r.Input2 = KindVerify, "Ada", "inputs/x" }), wantErr: "person is not for verify"},
		"unknown kind":              {req: with(func(r *Request) { r.Kind = "guess" }), wantErr: `kind "guess" is none of`},
		"search at version 1":       {req: func() Request { r := base; r.Kind = KindSearch; return r }(), wantErr: "needs schema version 3"},
		"collection at version 2": {req: func() Request {
			r := base.WithReplyTo("q")
			r.Kind, r.Person, r.Collection = KindEnroll, "Ada", "c"
			return r
		}(), wantErr: "needs schema version 3"},
		"search with quality": {req: with(func(r *Request) { r.Kind, r.Collection, r.Quality = KindSearch, "c", "high" })},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestReservedNames(t *testing.T) {
	for _, name := range []string{"unknown", LowQuality, "no face", ".", ".."} {
		if err := ValidPerson(name); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("ValidPerson(%q) = %v, want reserved", name, err)
		}
	}
}

// TestNewReply: a Reply carries its Result when it fits the message limit,
// and is sent without it, still valid, when it does not.
func TestNewReply(t *testing.T) {
	id := NewID()
	small := Result{V: Version, ID: id, Name: "test_00", Status: StatusDone, Answer: "Paul",
		Faces: []Face{{Box: Box{W: 64, H: 64}, Score: 0.9, Name: "Paul", Distance: 0.31}}}
	large := small
	large.Faces = nil
	for range 20 {
		large.Faces = append(large.Faces, small.Faces[0])
	}
	for name, tc := range map[string]struct {
		res     Result
		carried bool
	}{
		"one face":                 {small, true},
		"twenty faces, over 1 KiB": {large, false},
		"failed":                   {Result{V: Version, ID: id, Status: StatusFailed, Error: "input x does not exist"}, true},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := NewReply(tc.res)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxMessageBytes {
				t.Fatalf("reply is %d bytes, over %d", len(b), MaxMessageBytes)
			}
			var rep Reply
			if err := Decode(b, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.ID != id || rep.Status != tc.res.Status || rep.Output != ResultKey(id) {
				t.Errorf("reply = %+v", rep)
			}
			if got := rep.Result != nil; got != tc.carried {
				t.Fatalf("carries the result = %v, want %v", got, tc.carried)
			}
			if tc.carried && (rep.Result.Answer != tc.res.Answer || len(rep.Result.Faces) != len(tc.res.Faces) || rep.Result.Error != tc.res.Error) {
				t.Errorf("carried result = %+v, want %+v", *rep.Result, tc.res)
			}
		})
	}
	// A carried Result must be the reply's own.
	other := small
	other.ID = NewID()
	if err := (Reply{V: Version, ID: id, Status: StatusDone, Output: ResultKey(id), Result: &other}).Validate(); err == nil {
		t.Error("a reply carrying another job's result is valid")
	}
}
