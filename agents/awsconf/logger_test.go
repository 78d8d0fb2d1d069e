package awsconf

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/smithy-go/logging"
)

// TestSDKMessagesAreLogRecords: the SDK's own messages reach the agent's
// log as records at their level (a log of JSON lines stays JSON), and are
// dropped without a logger instead of going to stderr as plain text.
func TestSDKMessagesAreLogRecords(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := Config{Region: "us-east-1", Logger: log}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger.Logf(logging.Warn, "retry %d", 3)
	cfg.Logger.Logf(logging.Debug, "no checksum")
	var levels []string
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var rec struct{ Level, Msg, Detail string }
		if err := json.Unmarshal(line, &rec); err != nil || rec.Msg != "aws sdk" {
			t.Fatalf("line %q is not an agent's record: %v", line, err)
		}
		levels = append(levels, rec.Level+" "+rec.Detail)
	}
	if len(levels) != 2 || levels[0] != "WARN retry 3" || levels[1] != "DEBUG no checksum" {
		t.Errorf("records %v", levels)
	}
	quiet, err := Config{Region: "us-east-1"}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := quiet.Logger.(logging.Nop); !ok {
		t.Errorf("without a logger the SDK logs to %T", quiet.Logger)
	}
}
