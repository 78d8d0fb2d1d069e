package rehearsal

import (
	"slices"
	"testing"
)

func TestParseUnit(t *testing.T) {
	u, err := ParseUnit("x.service", `# comment
[Unit]
After=a.service b.service
After=c.service
; another comment
[Service]
ExecStart=/bin/echo one \
  two
Environment=A=1
Environment=B=2
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.List("Unit", "After"); !slices.Equal(got, []string{"a.service", "b.service", "c.service"}) {
		t.Errorf("After = %v", got)
	}
	if got := u.Value("Service", "ExecStart"); got != "/bin/echo one two" {
		t.Errorf("continued ExecStart = %q", got)
	}
	if got := u.Values("Service", "Environment"); !slices.Equal(got, []string{"A=1", "B=2"}) {
		t.Errorf("Environment = %v", got)
	}
	if u.Value("Service", "User") != "" {
		t.Error("unset key has a value")
	}
	for name, text := range map[string]string{
		"outside a section": "ExecStart=/bin/true\n",
		"not key=value":     "[Service]\nExecStart\n",
	} {
		if _, err := ParseUnit(name, text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseCloudConfig(t *testing.T) {
	c, err := ParseCloudConfig(`#cloud-config
write_files:
  - path: /etc/x
    permissions: "0644"
    content: |
      A=1
runcmd:
  - [systemctl, daemon-reload]
  - echo hi
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Files()["/etc/x"] != "A=1\n" || c.WriteFiles[0].Permissions != "0644" {
		t.Errorf("write_files %+v", c.WriteFiles)
	}
	if len(c.RunCmd) != 2 || !slices.Equal(c.RunCmd[0], []string{"systemctl", "daemon-reload"}) || !slices.Equal(c.RunCmd[1], []string{"sh", "-c", "echo hi"}) {
		t.Errorf("runcmd %q", c.RunCmd)
	}
	for name, ud := range map[string]string{
		"not cloud-config": "#!/bin/sh\necho\n",
		"encoded file":     "#cloud-config\nwrite_files:\n  - path: /x\n    encoding: b64\n    content: eA==\n",
	} {
		if _, err := ParseCloudConfig(ud); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if env := EnvFile("# c\nA=1\nB=\"two\"\n\n"); env["A"] != "1" || env["B"] != "two" || len(env) != 2 {
		t.Errorf("EnvFile = %v", env)
	}
}
