// Command testreport reads `go test -json` on stdin, prints what `go test`
// would print without -v (package results, and the output of failed tests),
// and records every test's outcome in a file. With -summary it reads that
// file back, prints each test that was skipped anywhere in the run and why,
// and fails unless each skip either ran (passed) in another part of the run
// or is on the allow-list.
//
//	go test -json ./... | go run ./scripts/testreport -run unit -record FILE
//	go run ./scripts/testreport -summary FILE -allow scripts/skips-allowed.txt
//
// The allow-list has one entry per line, "PACKAGE TEST # why", where
// PACKAGE and TEST are path.Match patterns (TEST matches the full name,
// subtests included) and the comment is required.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// outcome is one test's result in one part of the run.
type outcome struct {
	Run     string `json:"run"`
	Package string `json:"package"`
	Test    string `json:"test"`
	Action  string `json:"action"` // pass, fail or skip
	Reason  string `json:"reason,omitempty"`
}

func main() {
	run := flag.String("run", "tests", "name of this part of the run, in the summary")
	record := flag.String("record", "", "append each test's outcome to this file (JSON lines)")
	summary := flag.String("summary", "", "print the skips recorded in this file and check them")
	allow := flag.String("allow", "", "allow-list of skips, for -summary")
	flag.Parse()
	var err error
	if *summary != "" {
		err = summarize(os.Stdout, *summary, *allow)
	} else {
		err = filter(os.Stdin, os.Stdout, *run, *record)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
}

// filter copies the readable part of the event stream to w and records
// outcomes; it fails if any test or package failed.
func filter(r io.Reader, w io.Writer, run, record string) error {
	var rec *json.Encoder
	if record != "" {
		f, err := os.OpenFile(record, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		rec = json.NewEncoder(f)
	}
	output := map[string]*strings.Builder{} // package + test -> its output so far
	failed := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // not an event: build errors and the like
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if e.Test == "" {
				if e.Output != "PASS\n" { // go test without -v does not print it
					fmt.Fprint(w, e.Output)
				}
				continue
			}
			if output[key] == nil {
				output[key] = &strings.Builder{}
			}
			output[key].WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Action == "fail" {
				failed = true
			}
			if e.Test == "" {
				continue
			}
			var text string
			if b := output[key]; b != nil {
				text = b.String()
			}
			delete(output, key)
			if e.Action == "fail" {
				fmt.Fprint(w, text)
			}
			if rec != nil {
				o := outcome{Run: run, Package: e.Package, Test: e.Test, Action: e.Action}
				if e.Action == "skip" {
					o.Reason = skipReason(text)
				}
				if err := rec.Encode(o); err != nil {
					return err
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if failed {
		return errors.New("tests failed")
	}
	return nil
}

// skipReason is the message a test gave t.Skip: its output without the
// framework's own lines.
func skipReason(text string) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		lines = append(lines, t)
	}
	return strings.Join(lines, " | ")
}

// allowed is one entry of the allow-list.
type allowed struct {
	pkg, test, why string
}

func readAllow(file string) ([]allowed, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []allowed
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entry, why, ok := strings.Cut(line, "#")
		f := strings.Fields(entry)
		if !ok || strings.TrimSpace(why) == "" || len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"PACKAGE TEST # why\", got %q", file, i+1, line)
		}
		for _, p := range f {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%s:%d: %q: %w", file, i+1, p, err)
			}
		}
		out = append(out, allowed{pkg: f[0], test: f[1], why: strings.TrimSpace(why)})
	}
	return out, nil
}

// summarize prints every recorded skip and fails on one that neither ran
// elsewhere in the run nor is allowed.
func summarize(w io.Writer, file, allowFile string) error {
	allow, err := readAllow(allowFile)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var skips []outcome
	passed := map[string][]string{} // package + test -> runs where it passed
	dec := json.NewDecoder(f)
	for {
		var o outcome
		if err := dec.Decode(&o); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		switch o.Action {
		case "skip":
			skips = append(skips, o)
		case "pass":
			passed[o.Package+" "+o.Test] = append(passed[o.Package+" "+o.Test], o.Run)
		}
	}
	sort.Slice(skips, func(i, j int) bool {
		a, b := skips[i], skips[j]
		return a.Package+" "+a.Test+" "+a.Run < b.Package+" "+b.Test+" "+b.Run
	})
	bad := 0
	fmt.Fprintf(w, "%d skipped tests in this run:\n", len(skips))
	for _, s := range skips {
		verdict := ""
		if runs := passed[s.Package+" "+s.Test]; len(runs) > 0 {
			verdict = "ran in: " + strings.Join(runs, ", ")
		} else if a, ok := match(allow, s); ok {
			verdict = "allowed: " + a.why
		} else {
			verdict = "NOT ALLOWED: it ran nowhere in this run"
			bad++
		}
		fmt.Fprintf(w, "  [%s] %s %s\n      skip: %s\n      %s\n", s.Run, s.Package, s.Test, s.Reason, verdict)
	}
	if bad > 0 {
		return fmt.Errorf("%d skipped tests ran nowhere and are not on the allow-list %s", bad, allowFile)
	}
	return nil
}

func match(allow []allowed, s outcome) (allowed, bool) {
	for _, a := range allow {
		pm, _ := path.Match(a.pkg, s.Package)
		tm, _ := path.Match(a.test, s.Test)
		if pm && tm {
			return a, true
		}
	}
	return allowed{}, false
}
