package rehearsal

import (
	"bufio"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// CloudConfig is the part of a #cloud-config user data document the
// stack's templates use.
type CloudConfig struct {
	WriteFiles []WriteFile `yaml:"write_files"`
	// Packages are installed by the image's package manager (dnf on
	// Amazon Linux) before runcmd runs.
	Packages []string `yaml:"packages"`
	// RunCmd holds each runcmd entry as its argument list (a string entry
	// becomes ["sh", "-c", entry], as cloud-init runs it).
	RunCmd [][]string `yaml:"-"`
}

// WriteFile is one write_files entry.
type WriteFile struct {
	Path        string `yaml:"path"`
	Permissions string `yaml:"permissions"`
	Content     string `yaml:"content"`
	Owner       string `yaml:"owner"`
	Encoding    string `yaml:"encoding"`
}

// ParseCloudConfig reads user data in cloud-init's #cloud-config format.
func ParseCloudConfig(userData string) (CloudConfig, error) {
	if !strings.HasPrefix(userData, "#cloud-config\n") {
		return CloudConfig{}, fmt.Errorf("user data is not #cloud-config: %.40q", userData)
	}
	var doc struct {
		CloudConfig `yaml:",inline"`
		RunCmd      []any `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal([]byte(userData), &doc); err != nil {
		return CloudConfig{}, fmt.Errorf("user data is not YAML: %w", err)
	}
	c := doc.CloudConfig
	for i, e := range doc.RunCmd {
		switch v := e.(type) {
		case string:
			c.RunCmd = append(c.RunCmd, []string{"sh", "-c", v})
		case []any:
			var args []string
			for _, a := range v {
				args = append(args, fmt.Sprint(a))
			}
			c.RunCmd = append(c.RunCmd, args)
		default:
			return CloudConfig{}, fmt.Errorf("runcmd entry %d is %T, want a string or a list", i+1, e)
		}
	}
	for _, f := range c.WriteFiles {
		if f.Encoding != "" {
			return CloudConfig{}, fmt.Errorf("write_files %s: encoding %q is not supported here", f.Path, f.Encoding)
		}
	}
	return c, nil
}

// Files returns the written files' contents by path.
func (c CloudConfig) Files() map[string]string {
	out := map[string]string{}
	for _, f := range c.WriteFiles {
		out[f.Path] = f.Content
	}
	return out
}

// Unit is a parsed systemd unit file: its directives by section, in order.
type Unit struct {
	Name     string
	Sections map[string][]Directive
}

// Directive is one Key=Value line of a unit.
type Directive struct {
	Key, Value string
}

// ParseUnit reads a systemd unit file: sections, Key=Value lines (a
// trailing backslash continues a line), comments starting with # or ;.
func ParseUnit(name, text string) (Unit, error) {
	u := Unit{Name: name, Sections: map[string][]Directive{}}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	var cont strings.Builder
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSpace(strings.TrimSuffix(line, "\\")) + " ")
			continue
		}
		if cont.Len() > 0 {
			line = cont.String() + line
			cont.Reset()
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return Unit{}, fmt.Errorf("%s line %d: %q is not Key=Value in a section", name, n, line)
			}
			u.Sections[section] = append(u.Sections[section], Directive{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
		}
	}
	return u, sc.Err()
}

// Values returns every value of key in section, in order.
func (u Unit) Values(section, key string) []string {
	var out []string
	for _, d := range u.Sections[section] {
		if d.Key == key {
			out = append(out, d.Value)
		}
	}
	return out
}

// Value returns the last value of key in section ("" when unset).
func (u Unit) Value(section, key string) string {
	v := u.Values(section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// List returns the space-separated words of every value of key in section
// (After=, Requires=, ReadOnlyPaths=, ...).
func (u Unit) List(section, key string) []string {
	var out []string
	for _, v := range u.Values(section, key) {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// EnvFile parses a systemd EnvironmentFile: KEY=VALUE lines, # comments.
func EnvFile(text string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			env[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return env
}
