package codegen

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// standInCryptsetup records each call's arguments and the key it was given (the content
// of --key-file), and answers `status` with "not open".
const standInCryptsetup = `#!/bin/sh
n=$(ls "$STUB_LOG" | wc -l)
printf '%s\n' "$*" >"$STUB_LOG/cryptsetup.$n.args"
for a in "$@"; do
  case $a in /dev/fd/*) cat "$a" >"$STUB_LOG/cryptsetup.$n.key" ;; esac
done
case "$*" in status* | "open --test-passphrase"*) exit 1 ;; esac
`

// TestXtraceHidesPassphrase runs the format script of a LUKS layout under `bash -x`, as a
// user debugging it would. This machine's kernel has no device-mapper, so the device
// functions are the hostile-string harness's stubs and cryptsetup is a stand-in on PATH
// that records the key it reads: the key must reach cryptsetup, and the trace on stderr
// must never show it (from the passwordFile nor from an askPassword prompt).
func TestXtraceHidesPassphrase(t *testing.T) {
	const secret = "Zq9-not-for-traces"
	for _, ask := range []bool{false, true} {
		t.Run(fmt.Sprintf("askPassword=%v", ask), func(t *testing.T) {
			env := newStubEnv(t)
			dir := t.TempDir()
			pwFile := filepath.Join(dir, "pw")
			if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(env.path, "cryptsetup"), []byte(standInCryptsetup), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, tool := range []string{"sh", "ls", "wc", "cat"} {
				real, err := exec.LookPath(tool)
				if err != nil {
					t.Skipf("%s is not installed", tool)
				}
				os.Symlink(real, filepath.Join(env.path, tool))
			}
			key := fmt.Sprintf(`"passwordFile": %q`, pwFile)
			if ask {
				key = `"askPassword": true`
			}
			d := mustLoad(t, `{"disk": {"d": {"device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
				"luks": {"size": "100%", "content": {"type": "luks", "name": "crypted", `+key+`,
					"additionalKeyFiles": ["/extra.key"],
					"content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}}`)
			s, err := Generate(d, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var stubs strings.Builder
			stubs.WriteString(strings.Replace(stubRuntime, "disko_password() { printf -v \"$2\" '%s' pw; }\n", "", 1) + stubTool)
			for _, tool := range stubTools {
				if tool != "cryptsetup" && tool != "cat" {
					stubs.WriteString(tool + "() { disko_stub_tool " + tool + " \"$@\"; }\n")
				}
			}
			script := bytes.Replace(s.Format, []byte(runtimeEnd), []byte(stubs.String()+runtimeEnd), 1)
			logDir := filepath.Join(dir, "log")
			os.Mkdir(logDir, 0o755)
			bash, err := exec.LookPath("bash")
			if err != nil {
				t.Skip("bash is not installed")
			}
			cmd := exec.Command(bash, "-x", "-s")
			cmd.Stdin = bytes.NewReader(script)
			cmd.Env = []string{"PATH=" + env.path, "STUB_LOG=" + logDir, "STUB_MODE=format", "HOME=" + dir}
			if ask {
				cmd.Env = append(cmd.Env, "IN_DISKO_TEST=1")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("format: %v\n%s", err, stderr.String())
			}
			want := secret
			if ask {
				want = "disko" // IN_DISKO_TEST's passphrase, as with disko
			}
			keys, _ := filepath.Glob(filepath.Join(logDir, "cryptsetup.*.key"))
			if len(keys) < 3 { // luksFormat, open, luksAddKey
				t.Fatalf("cryptsetup was given a key %d times, want 3 (luksFormat, open, luksAddKey):\n%s", len(keys), stderr.String())
			}
			for _, k := range keys {
				if got, _ := os.ReadFile(k); string(got) != want {
					t.Errorf("%s: cryptsetup read the key %q, want %q", filepath.Base(k), got, want)
				}
			}
			trace := stderr.String()
			if !strings.Contains(trace, "+ disko_secret") {
				t.Fatalf("no xtrace output of the key step; was bash -x in effect?\n%s", trace)
			}
			if !ask && strings.Contains(trace, secret) {
				t.Errorf("the trace shows the passphrase:\n%s", trace)
			}
			if ask && strings.Contains(trace, "%s disko") {
				t.Errorf("the trace shows the typed passphrase:\n%s", trace)
			}
			// xtrace is back on after the passphrase steps: later commands are traced.
			if !strings.Contains(trace, "mkfs.ext4") {
				t.Errorf("xtrace was not restored after the passphrase:\n%s", trace)
			}
		})
	}
}
