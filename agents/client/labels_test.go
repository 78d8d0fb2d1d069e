package client

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/facecloud/facecloud/internal/testenv"
)

func TestReadLabels(t *testing.T) {
	tests := map[string]struct {
		csv     string
		want    map[string]string
		wantErr string
	}{
		"course format": {
			csv:  "Image,Results\ntest_00,Paul\ntest_01,Emily\n",
			want: map[string]string{"test_00": "Paul", "test_01": "Emily"},
		},
		"columns swapped, extensions, BOM, spaces": {
			csv:  "\ufeffresults, image\nPaul, a/test_00.jpg\n",
			want: map[string]string{"test_00": "Paul"},
		},
		"empty":            {csv: "", wantErr: "empty file"},
		"no header match":  {csv: "file,name\nx,y\n", wantErr: "lacks the columns"},
		"header only":      {csv: "Image,Results\n", wantErr: "no rows"},
		"empty cell":       {csv: "Image,Results\ntest_00,\n", wantErr: "line 2"},
		"conflicting rows": {csv: "Image,Results\nt,Paul\nt,Emily\n", wantErr: "both"},
		"ragged row":       {csv: "Image,Results\nt\n", wantErr: "labels:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ReadLabels(strings.NewReader(tc.csv))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadLabels = %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ReadLabels = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("label[%q] = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestReadLabelsFileCourse(t *testing.T) {
	path := filepath.Join(testenv.Dataset(t), "classification_1000.csv")
	got, err := ReadLabelsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 || got["test_000"] == "" {
		t.Fatalf("read %d labels (test_000=%q), want 1000", len(got), got["test_000"])
	}
}
