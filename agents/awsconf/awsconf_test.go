package awsconf

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"zero":             {},
		"all":              {cfg: Config{Region: "eu-central-1", Endpoint: "http://127.0.0.1:5000", InstanceID: "i-0123456789abcdef0", IMDSEndpoint: "http://127.0.0.1:1338"}},
		"gov region":       {cfg: Config{Region: "us-gov-west-1"}},
		"bad region":       {cfg: Config{Region: "Frankfurt"}, wantErr: "like us-east-1"},
		"endpoint scheme":  {cfg: Config{Endpoint: "127.0.0.1:5000"}, wantErr: "http:// or https://"},
		"endpoint no host": {cfg: Config{Endpoint: "http://"}, wantErr: "with a host"},
		"bad instance":     {cfg: Config{InstanceID: "web-1"}, wantErr: "i-0123456789abcdef0"},
		"bad imds":         {cfg: Config{IMDSEndpoint: "ftp://x"}, wantErr: "IMDS endpoint"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{EnvRegion: "eu-west-1", EnvEndpoint: "http://127.0.0.1:9", EnvInstanceID: "i-00000000000000001"}
	c := FromEnv(func(k string) string { return env[k] })
	want := Config{Region: "eu-west-1", Endpoint: "http://127.0.0.1:9", InstanceID: "i-00000000000000001"}
	if c != want {
		t.Fatalf("config %+v, want %+v", c, want)
	}
}

func TestLoadAndLogWithoutSecrets(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	c := Config{Region: "us-east-1", Endpoint: "http://127.0.0.1:5000"}
	cfg, err := c.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-east-1" || aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:5000" || !Emulated(cfg) {
		t.Fatalf("loaded region %q endpoint %v", cfg.Region, cfg.BaseEndpoint)
	}
	var buf bytes.Buffer
	Log(context.Background(), slog.New(slog.NewTextHandler(&buf, nil)), c, cfg)
	out := buf.String()
	if strings.Contains(out, "very-secret-value") || strings.Contains(out, "AKIDEXAMPLE") {
		t.Fatalf("log line shows a credential: %s", out)
	}
	for _, want := range []string{"region=us-east-1", "endpoint=http://127.0.0.1:5000", "credentials=EnvConfigCredentials"} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %q lacks %q", out, want)
		}
	}
	if _, err := (Config{Region: "nowhere"}).Load(context.Background()); err == nil {
		t.Fatal("Load accepted an invalid region")
	}
}
