package sqlitequeue

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/facecloud/facecloud/agents/platform/queuetest"
)

func TestFamilyConformance(t *testing.T) {
	queuetest.RunFamily(t, func(t *testing.T) queuetest.FamilySetup {
		path := filepath.Join(t.TempDir(), "queue.db")
		u := &url.URL{Scheme: "sqlite", Path: filepath.ToSlash(path), RawQuery: "name=reply-"}
		f, err := OpenFamily(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return queuetest.FamilySetup{Family: f, Prefix: f.Prefix()}
	})
}
