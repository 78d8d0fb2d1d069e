package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/facecloud/facecloud/agents/job"
	"github.com/facecloud/facecloud/agents/keys"
)

// API is a typed client of the web agent's HTTP API, written against its
// OpenAPI document (GET /openapi.json, agents/web/openapi.json): one
// method per operation, the document's bodies as Go types. Requests are
// retried on connection errors, 5xx and 429 (honouring Retry-After),
// never on other 4xx; a refusal comes back as an *Error.
type API struct {
	base *url.URL
	key  string
	http *retryablehttp.Client
}

// APIConfig says where the API is and how to call it.
type APIConfig struct {
	// URL is the service's base URL, e.g. http://127.0.0.1:8080/.
	URL string
	// APIKey is sent as Authorization: Bearer; empty sends none.
	APIKey string
	// Timeout bounds one HTTP attempt; 0 none.
	Timeout time.Duration
	// RetryMax, RetryWaitMin and RetryWaitMax shape the retries (see Config).
	RetryMax                   int
	RetryWaitMin, RetryWaitMax time.Duration
	// Conns is how many connections are kept open to the service.
	Conns int
}

// NewAPI checks cfg and builds a client.
func NewAPI(cfg APIConfig) (*API, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q must be an http:// or https:// URL with a host", cfg.URL)
	}
	if strings.ContainsAny(cfg.APIKey, " \t\r\n") {
		return nil, errors.New("API key must not contain spaces or line breaks")
	}
	if cfg.RetryMax < 0 || cfg.RetryMax > 100 {
		return nil, fmt.Errorf("retries %d out of range 0..100", cfg.RetryMax)
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = 500 * time.Millisecond
	}
	if cfg.RetryWaitMax < cfg.RetryWaitMin {
		cfg.RetryWaitMax = max(15*time.Second, cfg.RetryWaitMin)
	}
	transport := cleanhttp.DefaultPooledTransport()
	transport.MaxIdleConnsPerHost = max(cfg.Conns, 2)
	transport.MaxIdleConns = max(cfg.Conns, 2)
	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{Transport: transport, Timeout: cfg.Timeout}
	rc.RetryMax = cfg.RetryMax
	rc.RetryWaitMin, rc.RetryWaitMax = cfg.RetryWaitMin, cfg.RetryWaitMax
	rc.Backoff = spreadBackoff
	rc.Logger = nil
	// After the last attempt, hand back the last response (if any), so its
	// status and one-line reason become the Error.
	rc.ErrorHandler = func(resp *http.Response, err error, tries int) (*http.Response, error) {
		if resp != nil {
			return resp, nil
		}
		return nil, fmt.Errorf("gave up after %d attempt(s): %w", tries, err)
	}
	return &API{base: u, key: cfg.APIKey, http: rc}, nil
}

// Close releases idle connections.
func (a *API) Close() { a.http.HTTPClient.CloseIdleConnections() }

// Error is a refusal: the HTTP status and the service's one-line reason.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// StatusOf is err's HTTP status, 0 when it is not an *Error.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Image is one image to send: its file name (the answer's name is its
// stem) and bytes.
type Image struct {
	Name string
	Data []byte
}

// Options are the query parameters of the queueing routes; zero values
// are left out (the service's defaults).
type Options struct {
	// Wait is how long the service waits for the answer before 202; the
	// client then polls GET /v1/recognitions/{id} until it is done.
	Wait time.Duration
	// Threshold is the largest distance taken as a match (0.2..1.0).
	Threshold float64
	// Limit is a search's candidates per face (1..100).
	Limit int
	// Nearest names the nearest person even beyond the threshold.
	Nearest bool
	// Quality is the least quality a face needs to be matched: none, low,
	// medium or high; empty for the service's default (low).
	Quality string
}

func (o Options) query() url.Values {
	q := url.Values{}
	if o.Wait > 0 {
		q.Set("wait", o.Wait.String())
	}
	if o.Threshold > 0 {
		q.Set("threshold", strconv.FormatFloat(o.Threshold, 'g', -1, 64))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Nearest {
		q.Set("nearest", "1")
	}
	if o.Quality != "" {
		q.Set("quality", o.Quality)
	}
	return q
}

// Enrolment is the answer of an enrolment: one Result per image, in the
// order sent; Pending are those not answered within the wait.
type Enrolment struct {
	Collection string       `json:"collection"`
	Person     string       `json:"person"`
	Results    []job.Result `json:"results"`
	Pending    []Pending    `json:"pending,omitempty"`
}

// Pending is a request not answered yet.
type Pending struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Location string `json:"location"`
}

// Collection is one collection and its size.
type Collection struct {
	Name    string `json:"name"`
	Faces   int    `json:"faces"`
	Persons int    `json:"persons"`
}

// Person is one person and their number of faces.
type Person struct {
	Name  string `json:"name"`
	Faces int    `json:"faces"`
}

// Persons is a page of a collection's persons; Next, when set, is the
// cursor of the next page.
type Persons struct {
	Collection string   `json:"collection"`
	Persons    []Person `json:"persons"`
	Next       string   `json:"next,omitempty"`
}

// Face is an enrolled face as listed.
type Face struct {
	ID       string    `json:"id"`
	Source   string    `json:"source,omitempty"`
	Enrolled time.Time `json:"enrolled,omitzero"`
}

// Faces is a page of a person's faces.
type Faces struct {
	Collection string `json:"collection"`
	Person     string `json:"person"`
	Faces      []Face `json:"faces"`
	Next       string `json:"next,omitempty"`
}

// Erasure says what an erasure deleted.
type Erasure struct {
	Person     string `json:"person,omitempty"`
	ID         string `json:"id,omitempty"`
	Collection string `json:"collection,omitempty"`
	Faces      int    `json:"faces"`
	Inputs     int    `json:"inputs"`
	Results    int    `json:"results"`
	Answers    int    `json:"answers"`
	Scanned    int    `json:"scanned"`
	Purged     bool   `json:"purged"`
}

// NewKey asks for a key.
type NewKey struct {
	Name        string       `json:"name,omitempty"`
	Scopes      []keys.Scope `json:"scopes"`
	Collections []string     `json:"collections,omitempty"`
}

// CreatedKey is a new key, shown this once, and its listing.
type CreatedKey struct {
	Secret string `json:"key"`
	keys.Key
}

// RecognizeText is the course's contract, POST / with the image in field
// (inputFile unless given): the answer "<stem>:<name>", byte for byte.
func (a *API) RecognizeText(ctx context.Context, field string, img Image) (string, error) {
	if field == "" {
		field = "inputFile"
	}
	body, ct := formBody([]string{field}, []Image{img})
	b, err := a.do(ctx, http.MethodPost, a.base.String(), ct, body, http.StatusOK)
	return string(b), err
}

// Recognize names the faces of an image from the default collection.
func (a *API) Recognize(ctx context.Context, img Image, o Options) (job.Result, error) {
	return a.queued(ctx, "/v1/recognitions", o.query(), []Image{img})
}

// Detect finds the faces of an image, their scores and landmarks.
func (a *API) Detect(ctx context.Context, img Image, o Options) (job.Result, error) {
	return a.queued(ctx, "/v1/detections", o.query(), []Image{img})
}

// Verify compares the largest faces of two images.
func (a *API) Verify(ctx context.Context, first, second Image, o Options) (job.Result, error) {
	return a.queued(ctx, "/v1/verifications", o.query(), []Image{first, second})
}

// VerifyPerson compares the largest face of an image with person's faces
// in collection.
func (a *API) VerifyPerson(ctx context.Context, img Image, collection, person string, o Options) (job.Result, error) {
	q := o.query()
	q.Set("person", person)
	if collection != "" {
		q.Set("collection", collection)
	}
	return a.queued(ctx, "/v1/verifications", q, []Image{img})
}

// Search finds each face's nearest faces in collection.
func (a *API) Search(ctx context.Context, collection string, img Image, o Options) (job.Result, error) {
	return a.queued(ctx, "/v1/collections/"+url.PathEscape(collection)+"/searches", o.query(), []Image{img})
}

// Enroll adds each image (or each image of a .zip) as person in
// collection; externalID (one image) names the face, so that enrolling it
// again replaces it. The pending ones are waited for.
func (a *API) Enroll(ctx context.Context, collection, person string, images []Image, externalID string, o Options) (Enrolment, error) {
	q := o.query()
	if externalID != "" {
		q.Set("externalId", externalID)
	}
	path := "/v1/collections/" + url.PathEscape(collection) + "/persons/" + url.PathEscape(person) + "/faces"
	fields := make([]string, len(images))
	for i := range fields {
		fields[i] = "file"
	}
	body, ct := formBody(fields, images)
	var e Enrolment
	b, err := a.do(ctx, http.MethodPost, a.url(path, q), ct, body, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("enrolment answer: %w", err)
	}
	for _, p := range e.Pending {
		res, err := a.Result(ctx, p.ID)
		if err != nil {
			return e, err
		}
		e.Results = append(e.Results, res)
	}
	e.Pending = nil
	return e, nil
}

// Result waits for request id's Result.
func (a *API) Result(ctx context.Context, id string) (job.Result, error) {
	for {
		var res job.Result
		b, status, err := a.doStatus(ctx, http.MethodGet, a.url("/v1/recognitions/"+url.PathEscape(id), url.Values{"wait": {"30s"}}), "", nil, http.StatusOK, http.StatusAccepted)
		if err != nil {
			return res, err
		}
		if status == http.StatusOK {
			if err := json.Unmarshal(b, &res); err != nil {
				return res, fmt.Errorf("result %s: %w", id, err)
			}
			return res, nil
		}
	}
}

// DeleteResult erases a request: its image, Result and answer object.
func (a *API) DeleteResult(ctx context.Context, id string) (Erasure, error) {
	var e Erasure
	return e, a.getJSON(ctx, http.MethodDelete, a.url("/v1/recognitions/"+url.PathEscape(id), nil), &e)
}

// Collections lists the collections the key may use.
func (a *API) Collections(ctx context.Context) ([]Collection, error) {
	var out struct {
		Collections []Collection `json:"collections"`
	}
	return out.Collections, a.getJSON(ctx, http.MethodGet, a.url("/v1/collections", nil), &out)
}

// Persons is a page of collection's persons after the cursor after.
func (a *API) Persons(ctx context.Context, collection, after string, limit int) (Persons, error) {
	var out Persons
	return out, a.getJSON(ctx, http.MethodGet, a.url("/v1/collections/"+url.PathEscape(collection)+"/persons", page(after, limit)), &out)
}

// Faces is a page of person's faces in collection.
func (a *API) Faces(ctx context.Context, collection, person, after string, limit int) (Faces, error) {
	var out Faces
	path := "/v1/collections/" + url.PathEscape(collection) + "/persons/" + url.PathEscape(person) + "/faces"
	return out, a.getJSON(ctx, http.MethodGet, a.url(path, page(after, limit)), &out)
}

// DeletePerson erases person from collection (with purge, also their
// images and Results).
func (a *API) DeletePerson(ctx context.Context, collection, person string, purge bool) (Erasure, error) {
	var e Erasure
	path := "/v1/collections/" + url.PathEscape(collection) + "/persons/" + url.PathEscape(person)
	return e, a.getJSON(ctx, http.MethodDelete, a.url(path, purgeQuery(purge)), &e)
}

// DeleteFace erases one face.
func (a *API) DeleteFace(ctx context.Context, collection, person, faceID string, purge bool) (Erasure, error) {
	var e Erasure
	path := "/v1/collections/" + url.PathEscape(collection) + "/persons/" + url.PathEscape(person) + "/faces/" + url.PathEscape(faceID)
	return e, a.getJSON(ctx, http.MethodDelete, a.url(path, purgeQuery(purge)), &e)
}

// Keys lists the API keys.
func (a *API) Keys(ctx context.Context) ([]keys.Key, error) {
	var out struct {
		Keys []keys.Key `json:"keys"`
	}
	return out.Keys, a.getJSON(ctx, http.MethodGet, a.url("/v1/keys", nil), &out)
}

// CreateKey makes a key.
func (a *API) CreateKey(ctx context.Context, k NewKey) (CreatedKey, error) {
	var out CreatedKey
	body, _ := json.Marshal(k)
	b, err := a.do(ctx, http.MethodPost, a.url("/v1/keys", nil), "application/json", body, http.StatusCreated)
	if err != nil {
		return out, err
	}
	return out, json.Unmarshal(b, &out)
}

// RevokeKey revokes key id.
func (a *API) RevokeKey(ctx context.Context, id string) error {
	_, err := a.do(ctx, http.MethodDelete, a.url("/v1/keys/"+url.PathEscape(id), nil), "", nil, http.StatusOK)
	return err
}

// OpenAPI fetches the service's OpenAPI document.
func (a *API) OpenAPI(ctx context.Context) ([]byte, error) {
	return a.do(ctx, http.MethodGet, a.url("/openapi.json", nil), "", nil, http.StatusOK)
}

// queued posts images to a route that queues a job and returns its Result,
// polling when the service answers 202.
func (a *API) queued(ctx context.Context, path string, q url.Values, images []Image) (job.Result, error) {
	var res job.Result
	fields := []string{"inputFile"}
	if len(images) == 2 {
		fields = []string{"image1", "image2"}
	}
	body, ct := formBody(fields, images)
	b, status, err := a.doStatus(ctx, http.MethodPost, a.url(path, q), ct, body, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return res, err
	}
	if status == http.StatusAccepted {
		var p Pending
		if err := json.Unmarshal(b, &p); err != nil {
			return res, fmt.Errorf("%s: %w", path, err)
		}
		return a.Result(ctx, p.ID)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

func (a *API) url(path string, q url.Values) string {
	u := a.base.ResolveReference(&url.URL{Path: path})
	u.RawQuery = q.Encode()
	return u.String()
}

func (a *API) getJSON(ctx context.Context, method, u string, v any) error {
	b, err := a.do(ctx, method, u, "", nil, http.StatusOK)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	return nil
}

func (a *API) do(ctx context.Context, method, u, ct string, body []byte, ok ...int) ([]byte, error) {
	b, _, err := a.doStatus(ctx, method, u, ct, body, ok...)
	return b, err
}

// doStatus sends one request (retried as the client's policy says) and
// returns the body of an answer whose status is one of ok, else an *Error.
func (a *API) doStatus(ctx context.Context, method, u, ct string, body []byte, ok ...int) ([]byte, int, error) {
	var rb any
	if body != nil {
		rb = body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, rb)
	if err != nil {
		return nil, 0, fmt.Errorf("build request: %w", err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %s", method, u, oneLine(err.Error()))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return b, s, nil
		}
	}
	msg := strings.TrimPrefix(oneLine(string(b)), "error: ")
	var je struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &je) == nil && je.Error != "" {
		msg = je.Error
	}
	return b, resp.StatusCode, &Error{Status: resp.StatusCode, Message: msg}
}

func page(after string, limit int) url.Values {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

func purgeQuery(purge bool) url.Values {
	if purge {
		return url.Values{"purge": {"1"}}
	}
	return nil
}

// formBody encodes images as the course's generator (Python requests with
// files={...}) does: one part per image with a file name and no
// Content-Type of its own.
func formBody(fields []string, images []Image) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, img := range images {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, fields[i], img.Name))
		// Writes to a bytes.Buffer cannot fail.
		pw, _ := mw.CreatePart(h)
		_, _ = pw.Write(img.Data)
	}
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}
