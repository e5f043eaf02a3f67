package nixtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and the pinned vendorHash (nix/vendor-hash.nix)")

// nixConfig keeps every Nix call offline and runnable as root without build users:
// no binary cache (each build would wait on cache.nixos.org), no nixbld group needed,
// no sandbox (the stand-in runCommand uses the host's /bin/bash).
const nixConfig = "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false"

// root is the repository root (this package is internal/nixtest).
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return dir
}

var (
	nixOnce sync.Once
	nixErr  string
)

// needNix skips the test when Nix cannot evaluate here (not installed, or not root:
// Debian's nix-bin has no daemon, so only root can use the store).
func needNix(t *testing.T) {
	t.Helper()
	nixOnce.Do(func() {
		if _, err := exec.LookPath("nix-instantiate"); err != nil {
			nixErr = "nix-instantiate not found (apt-get install nix-bin)"
			return
		}
		out, err := nixCmd("nix-instantiate", "--eval", "-E", "1").CombinedOutput()
		if err != nil {
			nixErr = fmt.Sprintf("nix-instantiate cannot evaluate here (root is needed without a daemon): %v: %s", err, out)
		}
	})
	if nixErr != "" {
		t.Skip(nixErr)
	}
}

func nixCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+nixConfig)
	return cmd
}

// runNix runs a Nix command and returns stdout; stderr without Nix's noise about the
// missing nixbld group.
func runNix(name string, args ...string) (string, string, error) {
	cmd := nixCmd(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var kept []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if !strings.Contains(l, "build-users-group") && l != "" {
			kept = append(kept, l)
		}
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.Join(kept, "\n"))
	}
	return stdout.String(), strings.Join(kept, "\n"), err
}

// evalJSON evaluates a Nix expression strictly and decodes its JSON into v. Evaluation
// is read-only: import-from-derivation fails.
func evalJSON(t *testing.T, expr string, v any, extra ...string) {
	t.Helper()
	args := append([]string{"--eval", "--strict", "--json"}, extra...)
	out, _, err := runNix("nix-instantiate", append(args, "-E", expr)...)
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decoding the JSON of %s: %v\n%s", expr, err, out)
	}
}

// evalError evaluates an expression that must fail and returns Nix's message.
func evalError(t *testing.T, expr string) string {
	t.Helper()
	out, stderr, err := runNix("nix-instantiate", "--eval", "--strict", "--json", "-E", expr)
	if err == nil {
		t.Fatalf("evaluating %s succeeded with %s; want an error", expr, out)
	}
	return stderr
}

// nixString quotes s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// nixPath is an absolute path as a Nix path literal (paths here have no spaces).
func nixPath(t *testing.T, p string) string {
	t.Helper()
	if !filepath.IsAbs(p) || strings.ContainsAny(p, " \"'$") {
		t.Fatalf("%q cannot be written as a Nix path literal", p)
	}
	return p
}

// jsonEqual compares two JSON documents as values.
func jsonEqual(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decoding %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("decoding %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("writing %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s (create it with -update): %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (rewrite with: go test ./internal/nixtest -update)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
