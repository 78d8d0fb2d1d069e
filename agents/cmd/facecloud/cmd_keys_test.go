package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/agents/awsres/awstest"
	"github.com/facecloud/facecloud/agents/keys"
	"github.com/facecloud/facecloud/agents/platform/blobstore"
)

// runCmd runs facecloud in-process and returns its status, stdout and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	code := run(context.Background(), env, args)
	return code, stdout.String(), stderr.String()
}

var keyLine = regexp.MustCompile(`^fc_[a-z2-7]{16}_[a-z2-7]{32}\n$`)

// keysRoundTrip creates two keys in the store where (--data DIR or
// --store URL), lists them, revokes one and lists again, checking what
// each command prints.
func keysRoundTrip(t *testing.T, where ...string) {
	t.Helper()
	code, out, errOut := runCmd(t, append(append([]string{"keys", "create"}, where...), "--scopes", "admin", "--name", "ops")...)
	if code != 0 || !keyLine.MatchString(out) {
		t.Fatalf("keys create = %d, stdout %q (want the key alone on one line), stderr %q", code, out, errOut)
	}
	admin := strings.TrimSpace(out)
	if !strings.Contains(errOut, "shown this once") || strings.Contains(errOut, admin[len(admin)-32:]) {
		t.Errorf("keys create stderr %q: want a note that the key is shown once, without the key", errOut)
	}
	code, out, errOut = runCmd(t, append(append([]string{"keys", "create"}, where...), "--scopes", "enroll,recognize", "--collections", "team-b, team-a,team-b")...)
	if code != 0 || !keyLine.MatchString(out) || !strings.Contains(errOut, "collections team-a,team-b") {
		t.Fatalf("second keys create = %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCmd(t, append(append([]string{"keys", "list"}, where...), "--json")...)
	if code != 0 {
		t.Fatalf("keys list = %d: %s", code, errOut)
	}
	var list []keys.Key
	err := json.Unmarshal([]byte(out), &list)
	if err == nil && len(list) == 2 && list[0].Name != "ops" {
		list[0], list[1] = list[1], list[0] // created in the same second
	}
	if err != nil || len(list) != 2 || len(list[0].Collections) != 0 || strings.Join(list[1].Collections, ",") != "team-a,team-b" {
		t.Fatalf("keys list --json = %q (%v), want two keys, the second for team-a and team-b", out, err)
	}
	if strings.Contains(out, admin[len(admin)-32:]) || strings.Contains(out, "sha256") {
		t.Fatalf("keys list shows a secret or a hash: %s", out)
	}
	adminID := strings.Split(admin, "_")[1]
	code, out, _ = runCmd(t, append([]string{"keys", "list"}, where...)...)
	if code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, "LAST USED") || !regexp.MustCompile(adminID+` +ops +admin +all +\S+ +never`).MatchString(out) || !regexp.MustCompile(`recognize,enroll +team-a,team-b `).MatchString(out) {
		t.Fatalf("keys list = %d:\n%s", code, out)
	}
	if code, _, errOut := runCmd(t, append(append([]string{"keys", "revoke"}, where...), adminID)...); code != 0 {
		t.Fatalf("keys revoke = %d: %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, append(append([]string{"keys", "revoke"}, where...), adminID)...); code != 1 || !strings.Contains(errOut, "no key "+adminID) {
		t.Fatalf("second keys revoke = %d %q, want 1 and no such key", code, errOut)
	}
	_, out, _ = runCmd(t, append([]string{"keys", "list"}, where...)...)
	if strings.Contains(out, adminID) {
		t.Fatalf("revoked key still listed:\n%s", out)
	}
}

func TestKeysCommand(t *testing.T) {
	keysRoundTrip(t, "--data", t.TempDir())
}

// TestKeysCommandOnS3 runs the same commands against an S3 bucket (moto).
func TestKeysCommandOnS3(t *testing.T) {
	ep := awstest.Endpoint(t)
	for _, kv := range awstest.Env(ep) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	bucket := awstest.Names(t).OutputBucket
	awstest.Must(t, awstest.CreateBucket(ctx, awstest.Config(ep), bucket))
	keysRoundTrip(t, "--store", "s3://"+bucket)
	// The records are where a web agent with --output s3://BUCKET reads them.
	st, err := blobstore.OpenS3(ctx, awstest.Config(ep), blobstore.S3Config{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	objs, err := st.List(ctx, keys.Prefix)
	if err != nil || len(objs) != 1 {
		t.Fatalf("bucket holds %q (%v), want the one key left", objs, err)
	}
}

func TestKeysCommandRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		args []string
		code int
		want string
	}{
		"no subcommand":     {[]string{"keys", "--data", dir}, 2, "say create, list or revoke"},
		"unknown":           {[]string{"keys", "rotate", "--data", dir}, 2, `unknown subcommand "rotate"`},
		"no store":          {[]string{"keys", "list"}, 2, "--data DIR or --store URL"},
		"both stores":       {[]string{"keys", "list", "--data", dir, "--store", "file:///tmp/x"}, 2, "one of them"},
		"no scopes":         {[]string{"keys", "create", "--data", dir}, 1, "no scope given"},
		"bad collection":    {[]string{"keys", "create", "--data", dir, "--scopes", "enroll", "--collections", "a,b/c"}, 1, "collection name \"b/c\""},
		"unknown scope":     {[]string{"keys", "create", "--data", dir, "--scopes", "root"}, 1, `scope "root" unknown`},
		"revoke without id": {[]string{"keys", "revoke", "--data", dir}, 2, "takes 1 argument"},
		"revoke bad id":     {[]string{"keys", "revoke", "--data", dir, "../x"}, 1, "must be 16 characters"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
				t.Fatalf("facecloud %q = %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
			}
		})
	}
}

// TestLocalAdminKey checks the first-start key of facecloud local: created
// when the store has no key, written 0600, shown once; not again later.
func TestLocalAdminKey(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := openStore(ctx, &environment{}, localStoreURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var stderr strings.Builder
	env := &environment{stderr: &stderr}
	path, err := ensureAdminKey(ctx, env, st, dir)
	if err != nil || path == "" {
		t.Fatalf("ensureAdminKey = %q, %v", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !keyLine.MatchString(string(b)) {
		t.Fatalf("%s holds %q (%v), want the key", path, b, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	key := strings.TrimSpace(string(b))
	if strings.Count(stderr.String(), key) != 1 || !strings.Contains(stderr.String(), "shown this once") || !strings.Contains(stderr.String(), path) {
		t.Errorf("stderr %q: want the key once, that it is shown once, and the file", stderr.String())
	}
	ring := keys.NewRing(keys.NewStore(st), nil)
	if _, err := ring.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if k, err := ring.Verify(key); err != nil || !k.Allows(keys.Admin) {
		t.Fatalf("the file's key is not an admin key: %v", err)
	}
	stderr.Reset()
	if path, err := ensureAdminKey(ctx, env, st, dir); err != nil || path != "" || stderr.Len() != 0 {
		t.Fatalf("second start: %q, %v, stderr %q; want no new key", path, err, stderr.String())
	}
}

// TestListenDefaults: facecloud local answers this machine only unless
// told otherwise; the web agent (behind the stack's network rules) listens
// on every interface.
func TestListenDefaults(t *testing.T) {
	for cmd, want := range map[string]string{"local": "127.0.0.1:8080", "web": ":8080"} {
		fs, _, _ := helpFor(t, cmd, nil)
		if got := fs.Lookup("addr").Value.String(); got != want {
			t.Errorf("facecloud %s --addr defaults to %q, want %q", cmd, got, want)
		}
		if got := fs.Lookup("open-recognition").Value.String(); got != "false" {
			t.Errorf("facecloud %s --open-recognition defaults to %s, want false", cmd, got)
		}
	}
}
