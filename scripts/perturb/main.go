// Command perturb writes the robustness test's inputs: the distinct course
// faces and their altered copies (see agents/perturb), with a manifest the
// reference script reads. scripts/robustness.sh runs it.
//
//	go run ./scripts/perturb --dataset ../shared/datasets/cse546 --out DIR
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/facecloud/facecloud/agents/perturb"
)

// Manifest lists what was written under the output folder.
type Manifest struct {
	Gallery []Face `json:"gallery"`
	Copies  []Face `json:"copies"`
}

// Face is one written image and the person in it.
type Face struct {
	File    string `json:"file"`
	Person  string `json:"person"`
	Source  string `json:"source,omitempty"`
	Variant string `json:"variant,omitempty"`
	SHA256  string `json:"sha256"`
}

func main() {
	dataset := flag.String("dataset", "../shared/datasets/cse546", "course dataset folder")
	out := flag.String("out", "", "output folder (gallery/, copies/, manifest.json)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "perturb: --out is required")
		os.Exit(2)
	}
	if err := run(*dataset, *out); err != nil {
		fmt.Fprintln(os.Stderr, "perturb:", err)
		os.Exit(1)
	}
}

func run(dataset, out string) error {
	c, err := perturb.LoadCourse(dataset)
	if err != nil {
		return err
	}
	var m Manifest
	gdir := filepath.Join(out, "gallery")
	if err := os.MkdirAll(gdir, 0o755); err != nil {
		return err
	}
	for _, s := range c.Stems {
		name := s + ".jpg"
		if err := os.WriteFile(filepath.Join(gdir, name), c.Data[s], 0o644); err != nil {
			return err
		}
		m.Gallery = append(m.Gallery, Face{File: "gallery/" + name, Person: c.Labels[s], SHA256: sum(c.Data[s])})
	}
	copies, err := perturb.Write(filepath.Join(out, "copies"), c.Stems, c.Images)
	if err != nil {
		return err
	}
	for _, cp := range copies {
		data, err := os.ReadFile(filepath.Join(out, "copies", cp.File))
		if err != nil {
			return err
		}
		m.Copies = append(m.Copies, Face{File: "copies/" + cp.File, Person: c.Labels[cp.Source], Source: cp.Source, Variant: cp.Variant, SHA256: sum(data)})
	}
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "manifest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %d gallery faces and %d copies to %s\n", len(m.Gallery), len(m.Copies), out)
	return nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
