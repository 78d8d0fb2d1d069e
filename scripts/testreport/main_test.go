package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// events is a made-up `go test -json` stream: one test passes, one skips,
// one fails.
const events = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: no dataset here\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:3: broken\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}
`

func TestFilterAndSummary(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.jsonl")
	var out strings.Builder
	err := filter(strings.NewReader(events), &out, "unit", rec)
	if err == nil {
		t.Error("a failed test did not fail the filter")
	}
	if !strings.Contains(out.String(), "c_test.go:3: broken") || strings.Contains(out.String(), "no dataset") {
		t.Errorf("output shows the wrong tests:\n%s", out.String())
	}

	tests := map[string]struct {
		allow   string
		again   string // a second part of the run
		wantErr bool
		want    string
	}{
		"skip nowhere else, not allowed": {wantErr: true, want: "NOT ALLOWED"},
		"skip allowed":                   {allow: "p TestB # needs the dataset\n", want: "allowed: needs the dataset"},
		"allow-list without a reason":    {allow: "p TestB\n", wantErr: true},
		"skip that ran elsewhere": {
			again: `{"Action":"pass","Package":"p","Test":"TestB"}` + "\n",
			want:  "ran in: later",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			r := filepath.Join(d, "rec.jsonl")
			b, _ := os.ReadFile(rec)
			os.WriteFile(r, b, 0o644)
			if tc.again != "" {
				_ = filter(strings.NewReader(tc.again), &strings.Builder{}, "later", r)
			}
			allow := filepath.Join(d, "allow.txt")
			os.WriteFile(allow, []byte(tc.allow), 0o644)
			var sum strings.Builder
			err := summarize(&sum, r, allow)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v\n%s", err, tc.wantErr, sum.String())
			}
			if !strings.Contains(sum.String(), tc.want) {
				t.Errorf("summary does not say %q:\n%s", tc.want, sum.String())
			}
			if tc.want != "" && !strings.Contains(sum.String(), "no dataset here") {
				t.Errorf("summary lacks the skip's reason:\n%s", sum.String())
			}
		})
	}
}
