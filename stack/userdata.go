package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"

	"github.com/facecloud/facecloud/images"
)

// maxUserData is EC2's limit on user data before base64.
const maxUserData = 16 * 1024

// hostData fills a cloud-init template of images/cloud-init.
type hostData struct {
	Stack string
	// AgentEnv is /etc/facecloud/agent.env: the agents' backend URLs and settings.
	AgentEnv string
	// ArtifactsEnv is /etc/facecloud/artifacts.env: where fetch-artifacts looks.
	ArtifactsEnv string
	// Manifest is /etc/facecloud/artifacts.manifest.
	Manifest string
	// LogAgent is the CloudWatch agent's configuration: which log file
	// goes to which log group.
	LogAgent string
	// NumberedNames adds the service that gives a worker a numbered Name
	// tag (course preset).
	NumberedNames bool
}

// componentData fills images/worker/component.yaml.
type componentData struct {
	Bucket, Region, Manifest string
}

var templateFuncs = template.FuncMap{
	"indent": indent,
	"file":   embeddedFile,
	"b64":    func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
}

// render executes the embedded template name with data.
func render(name string, data any) (string, error) {
	src, err := images.FS.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	t, err := template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return b.String(), nil
}

func embeddedFile(name string) (string, error) {
	b, err := images.FS.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("embedded file %s: %w", name, err)
	}
	return string(b), nil
}

// indent prefixes every line of s with n spaces, for YAML block scalars.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

// envFile renders a systemd EnvironmentFile, keys sorted so the same input
// gives the same bytes (and so no needless instance refresh).
func envFile(env map[string]string) (string, error) {
	keys := slices.Sorted(maps.Keys(env))
	var b strings.Builder
	for _, k := range keys {
		v := env[k]
		if strings.ContainsAny(v, "\n\"\\ ") {
			return "", fmt.Errorf("environment value of %s has a space, quote, backslash or newline: %q", k, v)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.String(), nil
}

// renderHost renders the cloud-init user data of a worker ("worker") or the
// web host ("web") and checks it fits EC2's limit.
func renderHost(role string, d hostData) (string, error) {
	out, err := render("cloud-init/"+role+".yaml.tmpl", d)
	if err != nil {
		return "", err
	}
	if len(out) > maxUserData {
		return "", fmt.Errorf("%s user data is %d bytes, EC2 allows %d", role, len(out), maxUserData)
	}
	return out, nil
}

// manifest renders artifact lines for fetch-artifacts.
func manifest(as ...artifact) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "%s %s %s %s\n", a.SHA256, a.Key, a.Dest, a.Mode)
	}
	return b.String()
}
