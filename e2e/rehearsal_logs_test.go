package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// cloudWatchAgentConfig is the part of the CloudWatch agent's
// configuration the stack writes: which file goes to which group.
type cloudWatchAgentConfig struct {
	Logs struct {
		LogsCollected struct {
			Files struct {
				CollectList []struct {
					FilePath      string `json:"file_path"`
					LogGroupName  string `json:"log_group_name"`
					LogStreamName string `json:"log_stream_name"`
				} `json:"collect_list"`
			} `json:"files"`
		} `json:"logs_collected"`
	} `json:"logs"`
}

// logShipper stands in for the Amazon CloudWatch agent on a host, which
// the rehearsal cannot run (it is an Amazon Linux package): it reads the
// configuration the user data wrote and, with the host's role session
// from its metadata service and through its network path to AWS, does
// what the agent does for each collected file: CreateLogStream for the
// instance's stream in the file's group (an existing stream is fine),
// then PutLogEvents with the file's new lines every second, and once
// more when the host stops.
type logShipper struct {
	h    *host
	stop context.CancelFunc
	done chan struct{}
}

// startLogShipper plays `amazon-cloudwatch-agent-ctl -a fetch-config -s -c
// file:PATH`.
func (h *host) startLogShipper(configPath string) error {
	b, err := os.ReadFile(h.onHost(configPath))
	if err != nil {
		return fmt.Errorf("CloudWatch agent config: %w", err)
	}
	var cfg cloudWatchAgentConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("CloudWatch agent config %s: %w", configPath, err)
	}
	id, err := h.sys.sessionFor(h.role)
	if err != nil {
		return err
	}
	awsCfg := id.config(h.proxy.addr)
	client := cloudwatchlogs.NewFromConfig(awsCfg, func(o *cloudwatchlogs.Options) { o.RetryMaxAttempts = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	sh := &logShipper{h: h, stop: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, f := range cfg.Logs.LogsCollected.Files.CollectList {
		stream := strings.ReplaceAll(f.LogStreamName, "{instance_id}", h.id)
		wg.Go(func() { sh.ship(ctx, client, h.onHost(f.FilePath), f.LogGroupName, stream) })
	}
	go func() { wg.Wait(); close(sh.done) }()
	h.mu.Lock()
	h.shipper = sh
	h.mu.Unlock()
	return nil
}

// ship sends path's lines to group/stream until ctx ends, then the rest.
func (sh *logShipper) ship(ctx context.Context, c *cloudwatchlogs.Client, path, group, stream string) {
	created := false
	var offset int64
	var partial string
	flush := func(final bool) {
		f, err := os.Open(path)
		if err != nil {
			return // not written yet
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Size() < offset {
			offset = 0 // truncated (logrotate's copytruncate)
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return
		}
		b, _ := io.ReadAll(f)
		offset += int64(len(b))
		text := partial + string(b)
		lines := strings.Split(text, "\n")
		partial = lines[len(lines)-1]
		lines = lines[:len(lines)-1]
		if final && partial != "" {
			lines, partial = append(lines, partial), ""
		}
		if len(lines) == 0 {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if !created {
			_, err := c.CreateLogStream(cctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)})
			var exists *cwtypes.ResourceAlreadyExistsException
			if err != nil && !errors.As(err, &exists) {
				fmt.Fprintf(sh.h.log, "[%s cloudwatch-agent] create stream %s/%s: %v\n", sh.h.id, group, stream, err)
				return
			}
			created = true
		}
		now := time.Now().UnixMilli()
		var events []cwtypes.InputLogEvent
		for _, l := range lines {
			if l != "" {
				events = append(events, cwtypes.InputLogEvent{Message: aws.String(l), Timestamp: aws.Int64(now)})
			}
		}
		for len(events) > 0 {
			n := min(len(events), 1000)
			if _, err := c.PutLogEvents(cctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: events[:n]}); err != nil {
				fmt.Fprintf(sh.h.log, "[%s cloudwatch-agent] put log events %s/%s: %v\n", sh.h.id, group, stream, err)
				return
			}
			events = events[n:]
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush(true)
			return
		case <-time.After(time.Second):
			flush(false)
		}
	}
}

// agentLogLines returns the lines of each agent's log group (by group
// name) that streams of the given hosts received since since. A stream is
// an instance's, and a group's instances outlive a rehearsal (the next
// boots fresh hosts on them): what an earlier rehearsal shipped is not
// this one's.
func (s *system) agentLogLines(ctx context.Context, hosts map[string]bool, since time.Time) (map[string][]string, error) {
	c := cloudwatchlogs.NewFromConfig(s.admin)
	out := map[string][]string{}
	for _, g := range strings.Fields(fmt.Sprint(s.cap.Outputs["logGroups"])) {
		p := cloudwatchlogs.NewFilterLogEventsPaginator(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(g), StartTime: aws.Int64(since.UnixMilli())})
		out[g] = nil
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("log group %s: %w", g, err)
			}
			for _, e := range page.Events {
				if hosts[aws.ToString(e.LogStreamName)] && aws.ToInt64(e.Timestamp) >= since.UnixMilli() {
					out[g] = append(out[g], aws.ToString(e.Message))
				}
			}
		}
	}
	return out, nil
}

// checkAgentLogs checks that every agent's log group received JSON lines
// from this rehearsal's hosts since it began, one object a line with a
// level and a message, as the agents write them.
func (s *system) checkAgentLogs(ctx context.Context, hosts map[string]bool, since time.Time) []string {
	lines, err := s.agentLogLines(ctx, hosts, since)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for g, ls := range lines {
		if len(ls) == 0 {
			problems = append(problems, fmt.Sprintf("log group %s received no line from this rehearsal's hosts", g))
			continue
		}
		for _, l := range ls {
			var rec struct{ Level, Msg string }
			if json.Unmarshal([]byte(l), &rec) != nil || rec.Level == "" || rec.Msg == "" {
				problems = append(problems, fmt.Sprintf("log group %s holds a line that is not an agent's JSON record: %s", g, truncate(l, 200)))
				break
			}
		}
	}
	return problems
}
