package main

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// repoFile reads a file of the repository.
func repoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection returns the "## title" section of a Markdown doc.
func docSection(t *testing.T, doc, title string) string {
	t.Helper()
	i := strings.Index(doc, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("no section %q", title)
	}
	rest := doc[i+len(title)+5:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

var backticked = regexp.MustCompile("`([^`]*)`")

// TestWebFlagsAsDocumented reads the configuration table of
// docs/web-api.md: every flag of facecloud web is there, with its
// environment variable and default, and nothing else is.
func TestWebFlagsAsDocumented(t *testing.T) {
	fs, _, _ := helpFor(t, "web", nil)
	table := docSection(t, repoFile(t, "docs/web-api.md"), "Configuration")
	documented := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`--") {
			continue
		}
		var names, vars []string
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			switch {
			case strings.HasPrefix(m[1], "--"):
				names = append(names, strings.Fields(strings.TrimPrefix(m[1], "--"))[0])
			case strings.HasPrefix(m[1], envPrefix):
				vars = append(vars, m[1])
			}
		}
		if len(vars) != len(names) {
			t.Errorf("row %q names %d flags and %d variables", strings.TrimSpace(line), len(names), len(vars))
			continue
		}
		def := strings.TrimSpace(cells[2])
		for i, name := range names {
			documented[name] = true
			f := fs.Lookup(name)
			if f == nil {
				t.Errorf("docs/web-api.md documents --%s, which facecloud web does not have", name)
				continue
			}
			if want, _ := envName("web", name); vars[i] != want {
				t.Errorf("--%s: documented variable %s, bound %s", name, vars[i], want)
			}
			if len(names) == 1 && !sameDefault(f, def) {
				t.Errorf("--%s: documented default %q, flag default %q", name, def, f.DefValue)
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("facecloud web --%s is not in docs/web-api.md's configuration table", f.Name)
		}
	})
}

// sameDefault compares a documented default (the first word of its cell,
// without backticks) with a flag's, as values: 10MiB is 10 MiB, 168h is
// 168h0m0s. A cell that starts with words rather than a value says nothing
// about the default and is not checked; an empty cell means no default.
func sameDefault(f *flag.Flag, cell string) bool {
	words := strings.Fields(strings.ReplaceAll(cell, "`", ""))
	if len(words) == 0 {
		return f.DefValue == "" || f.DefValue == "false" || f.DefValue == "0" || f.DefValue == "0s"
	}
	doc := words[0]
	if !regexp.MustCompile(`^[0-9:.]|^(true|false)$`).MatchString(doc) {
		return true
	}
	if _, ok := f.Value.(byteSize); ok {
		a, err1 := parseSize(doc)
		b, err2 := parseSize(f.DefValue)
		return err1 == nil && err2 == nil && a == b
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isDur := g.Get().(time.Duration); isDur {
			a, err1 := time.ParseDuration(doc)
			b, err2 := time.ParseDuration(f.DefValue)
			return err1 == nil && err2 == nil && a == b
		}
	}
	return doc == f.DefValue
}

var envToken = regexp.MustCompile(`\bFACECLOUD_[A-Z0-9_]*[A-Z0-9]\b`)

// TestDocumentedVariablesExist: every FACECLOUD_ variable the README and
// docs/ mention is bound to a flag of some command, or is read by the code
// or scripts of the repository.
func TestDocumentedVariablesExist(t *testing.T) {
	known := map[string]bool{}
	for name := range commands {
		_, _, looked := helpFor(t, name, nil)
		for _, v := range looked {
			known[v] = true
		}
	}
	root := filepath.Join("..", "..", "..")
	codeExt := map[string]bool{".go": true, ".sh": true, ".service": true, ".tmpl": true, ".yaml": true, ".yml": true, ".mjs": true}
	for _, dir := range []string{"agents", "stack", "images", "scripts", "e2e", "internal", ".github", ".ci"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(codeExt[filepath.Ext(p)] || filepath.Base(p) == "run") {
				return err
			}
			b, err := os.ReadFile(p)
			for _, v := range envToken.FindAllString(string(b), -1) {
				known[v] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, v := range envToken.FindAllString(string(b), -1) {
			if !known[v] && !seen[v] {
				seen[v] = true
				t.Errorf("%s mentions %s, which no command or script reads", filepath.Base(d), v)
			}
		}
	}
}

// TestCommandsAsDocumented: the README's command table lists every
// command, and only commands that exist.
func TestCommandsAsDocumented(t *testing.T) {
	table := docSection(t, repoFile(t, "README.md"), "Commands")
	listed := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.Contains(cells[1], "`") {
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			words := strings.Fields(strings.TrimPrefix(m[1], "facecloud "))
			if len(words) == 0 {
				continue
			}
			listed[words[0]] = true
			if _, ok := commands[words[0]]; !ok {
				t.Errorf("README lists facecloud %s, which does not exist", words[0])
			}
		}
	}
	for name := range commands {
		if !listed[name] {
			t.Errorf("facecloud %s is not in the README's command table", name)
		}
	}
	// And the help names them all.
	var stderr strings.Builder
	run(context.Background(), &environment{stdout: &stderr, stderr: &stderr, getenv: func(string) string { return "" }}, []string{"help"})
	for name := range commands {
		if !strings.Contains(stderr.String(), "  "+name+" ") {
			t.Errorf("facecloud help does not list %s", name)
		}
	}
}
