package status

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// textLines is how many decisions and failures WriteText shows.
const textLines = 3

// WriteText writes st in a few lines for a terminal: the queue, the fleet,
// the calls of the last minute, the scaler's latest decisions and the
// latest failures, and what could not be read.
func WriteText(w io.Writer, st Status) error {
	var b strings.Builder
	ago := func(t time.Time) string {
		d := st.Time.Sub(t)
		if d < time.Second {
			return "now"
		}
		return d.Round(time.Second).String() + " ago"
	}
	clock := func(t time.Time) string { return t.Local().Format("15:04:05") }
	fmt.Fprintf(&b, "facecloud status at %s\n", st.Time.Local().Format("2006-01-02 15:04:05 MST"))
	if q := st.Queue; q != nil {
		dead := "dead letters unknown"
		if q.DeadLetter != nil {
			dead = plural(*q.DeadLetter, "dead letter", "dead letters")
		}
		src := ""
		if q.Source == "scaler" {
			src = fmt.Sprintf(" (scaler's poll, %s)", ago(q.At))
		}
		fmt.Fprintf(&b, "queue     %d visible, %d in flight, %s%s\n", q.Visible, q.InFlight, dead, src)
	} else {
		b.WriteString("queue     unknown\n")
	}
	if f := st.Fleet; f != nil {
		bounds := ""
		if s := st.Scaler; s != nil {
			bounds = fmt.Sprintf(" (%d..%d workers, %s each)", s.Policy.Min, s.Policy.Max, plural(s.Policy.TargetBacklog, "request", "requests"))
		}
		fmt.Fprintf(&b, "fleet     %d desired, %d running, %d starting%s, %s\n", f.Desired, f.Running, f.Pending, bounds, ago(f.At))
	} else {
		b.WriteString("fleet     unknown (no scaler report)\n")
	}
	r := st.Requests
	fmt.Fprintf(&b, "requests  %.1f/s over the last %s: %d answered, %d failed", r.Rate, (time.Duration(r.Seconds) * time.Second).Round(time.Second), r.OK, r.Failed)
	if r.P50MS != nil && r.P95MS != nil {
		fmt.Fprintf(&b, ", latency p50 %s p95 %s", millis(*r.P50MS), millis(*r.P95MS))
	}
	if len(st.Hosts) > 1 {
		fmt.Fprintf(&b, " (%d web hosts)", len(st.Hosts))
	}
	b.WriteString("\n")
	if s := st.Scaler; s != nil {
		state := ""
		if s.Stale {
			state = " STALE"
		}
		fmt.Fprintf(&b, "scaler    %s, report %s%s: %s %d, %s\n", s.Holder, ago(s.Written), state, s.Last.Action, s.Last.To, s.Last.Reason)
		if s.Error != "" {
			fmt.Fprintf(&b, "          last poll failed: %s\n", s.Error)
		}
		for i, d := range s.Decisions {
			if i == textLines {
				break
			}
			label := "decisions"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(&b, "%-9s %s %s %d->%d: %s\n", label, clock(d.At), d.Action, d.From, d.To, d.Reason)
		}
	}
	for i, f := range st.Failures {
		if i == textLines {
			fmt.Fprintf(&b, "          ... %d more (--json shows them)\n", len(st.Failures)-textLines)
			break
		}
		label := "failures"
		if i > 0 {
			label = ""
		}
		id := ""
		if f.ID != "" {
			id = " [" + f.ID + "]"
		}
		fmt.Fprintf(&b, "%-9s %s %s %d: %s%s\n", label, clock(f.At), f.Call, f.Status, f.Reason, id)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(&b, "note      %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// millis writes a latency in milliseconds as 850ms or 2.4s.
func millis(ms float64) string {
	if ms < 1000 {
		return fmt.Sprintf("%.0fms", ms)
	}
	return fmt.Sprintf("%.2fs", ms/1000)
}
