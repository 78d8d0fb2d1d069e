package client

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/facecloud/facecloud/agents/job"
)

// ReadLabels reads the course's expected answers: a CSV with a header naming
// the columns Image and Results (in any order, any case), one row per image.
// Image names may carry an extension or not; the map is keyed by stem.
func ReadLabels(r io.Reader) (map[string]string, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("labels: empty file, want a header Image,Results")
	}
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	imageCol, resultCol := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "image":
			imageCol = i
		case "results", "result":
			resultCol = i
		}
	}
	if imageCol < 0 || resultCol < 0 {
		return nil, fmt.Errorf("labels: header %q lacks the columns Image and Results", strings.Join(header, ","))
	}
	labels := map[string]string{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		line, _ := cr.FieldPos(0)
		stem := job.Stem(strings.TrimSpace(rec[imageCol]))
		name := strings.TrimSpace(rec[resultCol])
		if stem == "" || name == "" {
			return nil, fmt.Errorf("labels: line %d: empty image or result", line)
		}
		if prev, dup := labels[stem]; dup && prev != name {
			return nil, fmt.Errorf("labels: line %d: %q labelled both %q and %q", line, stem, prev, name)
		}
		labels[stem] = name
	}
	if len(labels) == 0 {
		return nil, errors.New("labels: no rows after the header")
	}
	return labels, nil
}

// ReadLabelsFile reads labels from a CSV file.
func ReadLabelsFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	return ReadLabels(f)
}
