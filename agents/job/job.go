// Package job is the message schema between the agents: a Request from web to
// worker, a Reply from worker to web, and the Result the worker stores before
// replying. Messages are small JSON (never the image), carry a schema version
// and a time-sortable UUIDv7 id, and are validated on both ends.
package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Version is the schema version of Replies, Results and of Requests that
// name no reply queue.
const Version = 1

// VersionReplyTo is the schema version of a Request that names the queue
// its Reply goes to (ReplyTo). This build reads both versions and writes a
// Request as Version when it has no ReplyTo, so workers of an earlier build
// keep reading the requests of a web tier that does not use per-host reply
// queues.
const VersionReplyTo = 2

// VersionQuality is the schema version of a Request that names a quality
// filter (Quality), asks for each face's landmarks (Landmarks) or uses
// the face API's fields (a Collection, FaceID, Limit, Threshold or Input2,
// or the kinds search, detect and verify), with or without ReplyTo. A
// Request without any of them is written as before, so earlier workers
// keep reading it; an earlier worker refuses a Request it cannot honour
// rather than ignore its filter, answer without landmarks or enrol into
// the default gallery what was meant for a collection.
const VersionQuality = 3

// VersionLandmarks is VersionQuality: the one schema version that brought
// both fields.
const VersionLandmarks = VersionQuality

// Quality filters a Request may name (the face engine's; see
// face.ParseQualityFilter and docs/gallery.md).
var QualityFilters = []string{"none", "low", "medium", "high"}

// MaxReplyToBytes bounds a Request's ReplyTo address.
const MaxReplyToBytes = 512

// MaxMessageBytes is the largest encoded message; the AWS request queue is
// created with the same limit.
const MaxMessageBytes = 1024

// Status of a finished job.
const (
	StatusDone   = "done"
	StatusFailed = "failed"
)

// Kinds of request.
const (
	// KindRecognize asks for the faces in an image and their names.
	KindRecognize = "recognize"
	// KindEnroll asks to add the image's face to the gallery as Person, so
	// the model is needed on workers only, never on the web host.
	KindEnroll = "enroll"
	// KindSearch asks for each face's Limit nearest faces of Collection.
	KindSearch = "search"
	// KindDetect asks for the faces' boxes, scores and landmarks only.
	KindDetect = "detect"
	// KindVerify asks whether the largest face of Input is the same
	// person as the largest face of Input2, or as Person of Collection.
	KindVerify = "verify"
)

// kinds are the kinds a request may have ("" is KindRecognize).
var kinds = []string{KindRecognize, KindEnroll, KindSearch, KindDetect, KindVerify}

// Bounds of a request's Limit and Threshold.
const (
	MaxLimit = 100
	// MinThreshold and MaxThreshold bound a request's match threshold (a
	// descriptor distance): below 0.2 not even two photos of one person
	// match, beyond 1.0 most strangers do.
	MinThreshold = 0.2
	MaxThreshold = 1.0
)

// Request asks a worker to recognise (or enrol) the faces in one stored image.
type Request struct {
	V  int    `json:"v"`
	ID string `json:"id"`
	// Kind is KindRecognize when empty.
	Kind string `json:"kind,omitempty"`
	// Person is the name to enrol under (KindEnroll), or to verify against
	// (KindVerify without Input2).
	Person string `json:"person,omitempty"`
	// Collection is the gallery enrolled into or searched (KindEnroll,
	// KindSearch, KindVerify with Person); empty is "default". Recognitions
	// use the default collection.
	Collection string `json:"collection,omitempty"`
	// FaceID is the id the enrolled face gets (the client's externalId);
	// empty derives it from the image, so enrolling the same image twice
	// keeps one face (KindEnroll).
	FaceID string `json:"face_id,omitempty"`
	// Limit is how many candidates a search answers per face, 1..MaxLimit
	// (KindSearch; 0 is 1).
	Limit int `json:"limit,omitempty"`
	// Threshold is the largest distance taken as a match, within
	// MinThreshold..MaxThreshold; 0 is the worker's default.
	Threshold float64 `json:"threshold,omitempty"`
	// Input2 is the store key of the second image (KindVerify of two images).
	Input2 string `json:"input2,omitempty"`
	// Name is the client's file name without extension; the text answer
	// starts with it.
	Name string `json:"name"`
	// Input is the store key of the image.
	Input string `json:"input"`
	// Nearest asks for the nearest gallery name even beyond the threshold.
	Nearest bool `json:"nearest,omitempty"`
	// Quality is the least quality a face needs to be matched: one of
	// QualityFilters, or empty for the worker's default (VersionQuality
	// only).
	Quality string    `json:"quality,omitempty"`
	Sent    time.Time `json:"sent"`
	// ReplyTo is the address of the queue the web host that waits for the
	// answer reads (VersionReplyTo only). A worker sends the Reply there
	// only when the address is one of its configured reply queues, so a
	// forged request cannot make it write anywhere else.
	ReplyTo string `json:"reply_to,omitempty"`
	// Landmarks asks for each face's 68 landmarks in the Result
	// (VersionLandmarks only; recognitions only).
	Landmarks bool `json:"landmarks,omitempty"`
}

// Reply tells the web agent that a job's Result is in the output store.
type Reply struct {
	V      int    `json:"v"`
	ID     string `json:"id"`
	Status string `json:"status"`
	// Output is the store key of the Result.
	Output string `json:"output"`
	// Result is a copy of the stored Result when the Reply fits
	// MaxMessageBytes with it (NewReply): the waiting call answers from it
	// without reading the store. It is sent only after the Result is
	// stored, so the store stays the record and a Reply without it (a
	// large Result, an earlier worker) is read there. Earlier web hosts
	// ignore the field.
	Result *Result `json:"result,omitempty"`
}

// NewReply is the Reply for res, stored under ResultKey(res.ID), encoded:
// with a copy of res when that fits MaxMessageBytes, else without.
func NewReply(res Result) ([]byte, error) {
	rep := Reply{V: Version, ID: res.ID, Status: res.Status, Output: ResultKey(res.ID), Result: &res}
	b, err := Encode(rep)
	if errors.Is(err, errTooLarge) {
		rep.Result = nil
		b, err = Encode(rep)
	}
	return b, err
}

// Box is a face's bounding box in the pixels of the original image.
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// LowQuality is the Name of a face below the request's quality filter: it
// is reported, not matched.
const LowQuality = "low quality"

// Face is one recognised face.
type Face struct {
	Box Box `json:"box"`
	// Score is the detector's confidence (for a face crop, the crop check's).
	Score float64 `json:"score"`
	// Name is the matched gallery name, "unknown", or LowQuality (the
	// enrolled person for an enrolment).
	Name string `json:"name,omitempty"`
	// Distance is the Euclidean distance to the nearest gallery face; -1
	// when the face was not matched (LowQuality, or an empty gallery); 0
	// for an enrolment.
	Distance float64 `json:"distance"`
	// Quality grades the face: poor, low, medium or high.
	Quality string `json:"quality,omitempty"`
	// Landmarks are the face's 68 points when the request asked for them
	// (iBUG 300-W order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
	// mouth 48-67).
	Landmarks []Point `json:"landmarks,omitempty"`
	// Similarity maps Distance to 0..1 (gallery.Similarity).
	Similarity float64 `json:"similarity,omitempty"`
	// FaceID is the nearest face's id, or the enrolled face's.
	FaceID string `json:"face_id,omitempty"`
	// Candidates are the nearest faces of a search, nearest first.
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Candidate is one of the nearest faces of a search.
type Candidate struct {
	Person     string  `json:"person"`
	FaceID     string  `json:"face_id"`
	Distance   float64 `json:"distance"`
	Similarity float64 `json:"similarity"`
}

// Point is a position in the image's pixels.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Detection is one face a detection found.
type Detection struct {
	Box   Box     `json:"box"`
	Score float64 `json:"score"`
	// Landmarks are the 68 points of the iBUG 300-W scheme (jaw 0-16,
	// brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
	Landmarks []Point `json:"landmarks"`
}

// Verification is the answer of a KindVerify request.
type Verification struct {
	// Match is Distance <= Threshold.
	Match      bool    `json:"match"`
	Distance   float64 `json:"distance"`
	Similarity float64 `json:"similarity"`
	Threshold  float64 `json:"threshold"`
	// Person and FaceID name the person's face nearest to the image's
	// (verification against a person).
	Person string `json:"person,omitempty"`
	FaceID string `json:"face_id,omitempty"`
	// LowQuality is set when a compared face is below the request's
	// quality filter: Match is then false whatever the distance.
	LowQuality bool `json:"low_quality,omitempty"`
}

// Result is what a worker stores for a job, done or failed.
type Result struct {
	V      int    `json:"v"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	// Answer is the single name the text API returns: the first (largest)
	// face's name, "unknown" if it matched no one, "no face" if none was found.
	Answer string `json:"answer,omitempty"`
	// Kind is the request's kind (empty for a recognition).
	Kind string `json:"kind,omitempty"`
	// Collection is the gallery the request used, if any.
	Collection string `json:"collection,omitempty"`
	// Error says why a failed job failed, in one line.
	Error string `json:"error,omitempty"`
	// Faces are the faces named (recognition, search, enrolment: the face
	// enrolled; verification: the image's face, then the second image's).
	Faces []Face `json:"faces,omitempty"`
	// Detections are the faces found by a detection.
	Detections []Detection `json:"detections,omitempty"`
	// Verification answers a verification.
	Verification *Verification `json:"verification,omitempty"`
	// Threshold is the match threshold the worker applied.
	Threshold float64 `json:"threshold,omitempty"`
	// Input2 is the store key of a verification's second image, so that
	// erasing the request erases it too.
	Input2 string `json:"input2,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	// RecognitionMS is the time the engine (decoding, detection, description,
	// quality) and the gallery search took, without queueing or I/O.
	RecognitionMS float64   `json:"recognition_ms"`
	Worker        string    `json:"worker,omitempty"`
	Finished      time.Time `json:"finished"`
}

// Store keys.
const (
	InputPrefix  = "inputs/"
	ResultPrefix = "results/"
)

// InputKey is where the web agent stores a request's image.
func InputKey(id string) string { return InputPrefix + id }

// ResultKey is where a worker stores a request's Result.
func ResultKey(id string) string { return ResultPrefix + id + ".json" }

// AnswerKey is where a worker that stores answer objects (the course's
// output bucket layout: "test_00" holding "Paul") puts the answer of a
// request named name. Names that are not plain file stems, or that would
// shadow the store's own prefixes, get no answer object.
func AnswerKey(name string) (string, bool) {
	if !answerKeyRE.MatchString(name) || name+"/" == InputPrefix || name+"/" == ResultPrefix || reservedNames[name] {
		return "", false
	}
	return name, true
}

var answerKeyRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$`)

// reservedNames are the store's other top-level prefixes (the gallery, API
// keys and their use, the agents' status reports, face thumbnails): an
// answer object of that name would shadow them in a file store.
var reservedNames = map[string]bool{"gallery": true, "collections": true, "keys": true, "keyuse": true, "status": true, "thumbs": true}

// IDTime is when the request with UUIDv7 id was made.
func IDTime(id string) (time.Time, error) {
	if err := validID(id); err != nil {
		return time.Time{}, err
	}
	sec, nsec := uuid.MustParse(id).Time().UnixTime()
	return time.Unix(sec, nsec).UTC(), nil
}

// NewID returns a new UUIDv7: unique and sortable by creation time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Stem returns a file name without directory and extension, as answers use it.
func Stem(filename string) string {
	base := path.Base(strings.ReplaceAll(filename, `\`, "/"))
	if base == "." || base == "/" {
		return ""
	}
	return strings.TrimSuffix(base, path.Ext(base))
}

// NewRequest builds a valid request for an image stored under InputKey(id).
func NewRequest(id, name string, nearest bool, now time.Time) Request {
	return Request{V: Version, ID: id, Name: name, Input: InputKey(id), Nearest: nearest, Sent: now.UTC()}
}

// WithReplyTo returns r naming addr as its reply queue, at VersionReplyTo
// (VersionQuality if it names a quality filter or asks for landmarks).
func (r Request) WithReplyTo(addr string) Request {
	r.ReplyTo = addr
	r.V = r.version()
	return r
}

// WithLandmarks returns r asking for landmarks (or not), at the version its
// fields need.
func (r Request) WithLandmarks(on bool) Request {
	r.Landmarks = on
	r.V = r.version()
	return r
}

// WithQuality returns r naming the quality filter q ("" for the worker's
// default), at VersionQuality when q is set or r uses the face API's
// fields: call it last, once the other fields are set.
func (r Request) WithQuality(q string) Request {
	r.Quality = q
	r.V = r.version()
	return r
}

// version is the lowest schema version that carries r's fields.
func (r Request) version() int {
	switch {
	case r.Quality != "" || r.Landmarks || r.usesAPI():
		return VersionQuality
	case r.ReplyTo != "":
		return VersionReplyTo
	}
	return Version
}

// usesAPI reports whether r has a field that only VersionQuality carries
// (besides Quality).
func (r Request) usesAPI() bool {
	return r.Collection != "" || r.FaceID != "" || r.Limit != 0 || r.Threshold != 0 || r.Input2 != "" ||
		r.Kind == KindSearch || r.Kind == KindDetect || r.Kind == KindVerify
}

func validID(id string) error {
	u, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("id %q is not a UUID: %w", id, err)
	}
	if u.Version() != 7 {
		return fmt.Errorf("id %q is a version %d UUID, want version 7", id, u.Version())
	}
	return nil
}

func validVersion(v int) error {
	if v != Version {
		return fmt.Errorf("schema version %d not supported (this build speaks %d)", v, Version)
	}
	return nil
}

// Validate reports the first thing wrong with r.
func (r Request) Validate() error {
	switch {
	case r.V == VersionQuality:
		if r.ReplyTo != "" {
			if err := validReplyTo(r.ReplyTo); err != nil {
				return err
			}
		}
		if err := ValidQuality(r.Quality); err != nil {
			return err
		}
	case r.Quality != "":
		return fmt.Errorf("quality needs schema version %d, message has %d", VersionQuality, r.V)
	case r.Landmarks:
		return fmt.Errorf("landmarks need schema version %d, message has %d", VersionLandmarks, r.V)
	case r.usesAPI():
		return fmt.Errorf("kind %q with collection, face_id, limit, threshold or input2 needs schema version %d, message has %d", r.Kind, VersionQuality, r.V)
	case r.V == VersionReplyTo:
		if err := validReplyTo(r.ReplyTo); err != nil {
			return err
		}
	case r.ReplyTo != "":
		return fmt.Errorf("reply_to needs schema version %d, message has %d", VersionReplyTo, r.V)
	default:
		if err := validVersion(r.V); err != nil {
			return fmt.Errorf("%w (requests may also be version %d or %d)", err, VersionReplyTo, VersionQuality)
		}
	}
	if err := validID(r.ID); err != nil {
		return err
	}
	if r.Input == "" {
		return errors.New("input key is empty")
	}
	if len(r.Name) > 255 {
		return fmt.Errorf("name is %d bytes, at most 255 allowed", len(r.Name))
	}
	if !slices.Contains(kinds, r.Kind) && r.Kind != "" {
		return fmt.Errorf("kind %q is none of %s", r.Kind, strings.Join(kinds, ", "))
	}
	kind := r.Kind
	if kind == "" {
		kind = KindRecognize
	}
	needs := func(ok bool, field string) error {
		if !ok {
			return fmt.Errorf("%s is not for %s requests", field, kind)
		}
		return nil
	}
	verifyPerson := kind == KindVerify && r.Input2 == ""
	if err := errors.Join(
		needs(r.Person == "" || kind == KindEnroll || verifyPerson, "person"),
		needs(r.Collection == "" || kind == KindEnroll || kind == KindSearch || verifyPerson, "collection"),
		needs(r.FaceID == "" || kind == KindEnroll, "face_id"),
		needs(r.Limit == 0 || kind == KindSearch, "limit"),
		needs(r.Threshold == 0 || kind == KindRecognize || kind == KindSearch || kind == KindVerify, "threshold"),
		needs(r.Input2 == "" || kind == KindVerify, "input2"),
		needs(!r.Landmarks || kind == KindRecognize, "landmarks"),
	); err != nil {
		return err
	}
	if kind == KindEnroll || verifyPerson {
		if err := ValidPerson(r.Person); err != nil {
			return err
		}
	}
	if r.Collection != "" {
		if err := ValidCollection(r.Collection); err != nil {
			return err
		}
	}
	if r.FaceID != "" {
		if err := ValidFaceID(r.FaceID); err != nil {
			return err
		}
	}
	if r.Limit < 0 || r.Limit > MaxLimit {
		return fmt.Errorf("limit %d out of range 1..%d", r.Limit, MaxLimit)
	}
	if r.Threshold != 0 && !(r.Threshold >= MinThreshold && r.Threshold <= MaxThreshold) {
		return fmt.Errorf("threshold %v out of range %v..%v", r.Threshold, MinThreshold, MaxThreshold)
	}
	return nil
}

// ValidCollection checks a collection name: 1..64 letters, digits, '-'
// and '_', starting with a letter or digit (names become store key
// segments and URL path segments).
func ValidCollection(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("collection name %q must be 1..64 characters", truncate(name, 70))
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '-' || r == '_'))
		if !ok {
			return fmt.Errorf("collection name %q may hold only letters, digits, '-' and '_', starting with a letter or digit", truncate(name, 70))
		}
	}
	return nil
}

// ValidFaceID checks a face id (an externalId): 1..64 letters, digits,
// '-' and '_'.
func ValidFaceID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("face id %q must be 1..64 characters", truncate(id, 70))
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("face id %q may hold only letters, digits, '-' and '_'", truncate(id, 70))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// validReplyTo checks a reply queue address: 1..MaxReplyToBytes of
// printable ASCII without spaces (a queue URL).
func validReplyTo(addr string) error {
	if addr == "" || len(addr) > MaxReplyToBytes {
		return fmt.Errorf("reply_to must be 1..%d bytes, got %d", MaxReplyToBytes, len(addr))
	}
	for i := 0; i < len(addr); i++ {
		if addr[i] <= ' ' || addr[i] >= 0x7f {
			return fmt.Errorf("reply_to %q must be printable ASCII without spaces", addr)
		}
	}
	return nil
}

// ValidQuality checks a quality filter: empty (the default) or one of
// QualityFilters.
func ValidQuality(q string) error {
	if q == "" {
		return nil
	}
	for _, f := range QualityFilters {
		if q == f {
			return nil
		}
	}
	return fmt.Errorf("quality %q must be none, low, medium or high", truncateQ(q))
}

func truncateQ(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// ValidPerson checks a gallery name: 1..64 bytes of printable characters
// without '/', since names become store key segments.
func ValidPerson(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("person name %q must be 1..64 bytes", name)
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("person name %q must not contain '/', '\\' or control characters", name)
		}
	}
	if name == "." || name == ".." || name == "unknown" || name == LowQuality || name == "no face" {
		return fmt.Errorf("person name %q is reserved", name)
	}
	return nil
}

// Validate reports the first thing wrong with r.
func (r Reply) Validate() error {
	if err := validVersion(r.V); err != nil {
		return err
	}
	if err := validID(r.ID); err != nil {
		return err
	}
	if r.Status != StatusDone && r.Status != StatusFailed {
		return fmt.Errorf("status %q is neither %q nor %q", r.Status, StatusDone, StatusFailed)
	}
	if r.Output == "" {
		return errors.New("output key is empty")
	}
	if r.Result != nil {
		if err := r.Result.Validate(); err != nil {
			return fmt.Errorf("result: %w", err)
		}
		if r.Result.ID != r.ID || r.Result.Status != r.Status {
			return fmt.Errorf("result is %s (%s), the reply %s (%s)", r.Result.ID, r.Result.Status, r.ID, r.Status)
		}
	}
	return nil
}

// Validate reports the first thing wrong with r.
func (r Result) Validate() error {
	if err := validVersion(r.V); err != nil {
		return err
	}
	if err := validID(r.ID); err != nil {
		return err
	}
	switch r.Status {
	case StatusDone:
		if r.Answer == "" {
			return errors.New("done result has no answer")
		}
	case StatusFailed:
		if r.Error == "" {
			return errors.New("failed result has no error")
		}
	default:
		return fmt.Errorf("status %q is neither %q nor %q", r.Status, StatusDone, StatusFailed)
	}
	return nil
}

type validator interface{ Validate() error }

// errTooLarge marks a message over MaxMessageBytes.
var errTooLarge = errors.New("message too large")

// Encode validates m and encodes it, refusing messages over MaxMessageBytes.
// Results are stored, not queued, and have no size limit.
func Encode(m validator) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("invalid %T: %w", m, err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	if _, isResult := m.(Result); !isResult && len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%T is %d bytes, at most %d allowed: %w", m, len(b), MaxMessageBytes, errTooLarge)
	}
	return b, nil
}

// Decode decodes and validates b into m (a *Request, *Reply or *Result).
func Decode(b []byte, m interface {
	validator
}) error {
	if err := json.Unmarshal(b, m); err != nil {
		return fmt.Errorf("decode %T: %w", m, err)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("invalid %T: %w", m, err)
	}
	return nil
}
