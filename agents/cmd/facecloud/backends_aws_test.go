package main

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseASGURL(t *testing.T) {
	tests := map[string]struct {
		raw      string
		group    string
		cooldown time.Duration
		wantErr  string
	}{
		"group":          {raw: "asg://fc-dev-workers", group: "fc-dev-workers"},
		"cooldown":       {raw: "asg://g?cooldown=30s", group: "g", cooldown: 30 * time.Second},
		"no group":       {raw: "asg://", wantErr: "want asg://GROUP"},
		"path":           {raw: "asg://g/x", wantErr: "want asg://GROUP"},
		"bad cooldown":   {raw: "asg://g?cooldown=soon", wantErr: "not a duration"},
		"long cooldown":  {raw: "asg://g?cooldown=2h", wantErr: "0..1h"},
		"unknown option": {raw: "asg://g?max=3", wantErr: `parameter "max" unknown`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseASGURL(u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseASGURL(%s) error %v, want %q", tc.raw, err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Group != tc.group || c.Cooldown != tc.cooldown {
				t.Fatalf("parseASGURL(%s) = %+v, %v", tc.raw, c, err)
			}
		})
	}
}
