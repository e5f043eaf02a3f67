package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// layoutJSON is a one-disk layout; JSON needs no Nix, so the command-line tests run
// anywhere.
const layoutJSON = `{"disk":{"main":{"device":"/dev/loop99","content":{"type":"gpt","partitions":{
  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`

// ran is what a run handed to the script runner.
type ran struct {
	script []byte
	args   []string
	debug  bool
}

// runCLI runs the command in-process with a script runner that records the script it was
// given and exits with scriptCode.
func runCLI(t *testing.T, scriptCode int, args ...string) (int, string, string, *ran) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	var got *ran
	e := env{
		stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string {
			if k == ToolsPathEnv {
				return "/nix/store/tools/bin"
			}
			return ""
		},
		runScript: func(_ context.Context, _ env, file string, args []string, debug bool) (int, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got = &ran{script: b, args: args, debug: debug}
			return scriptCode, nil
		},
	}
	code := run(context.Background(), append([]string{"disko"}, args...), e)
	return code, stdout.String(), stderr.String(), got
}

// scriptsFor is what the command must run for the test layout.
func scriptsFor(t *testing.T, root, path string) *codegen.Scripts {
	t.Helper()
	d, err := config.Load([]byte(layoutJSON), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := codegen.Generate(d, codegen.Options{RootMountpoint: root, PathDirs: path})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestModes(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "disk-config.json")
	if err := os.WriteFile(layout, []byte(layoutJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	tools := "/nix/store/tools/bin"
	tests := []struct {
		name     string
		args     []string
		script   string // mode of codegen.Scripts
		root     string
		path     string
		wantArgs []string
		debug    bool
	}{
		{"default mode is mount", []string{layout}, "mount", "/mnt", tools, nil, false},
		{"-m format", []string{"-m", "format", layout}, "format", "/mnt", tools, nil, false},
		{"unmount", []string{"--mode", "unmount", layout}, "unmount", "/mnt", tools, nil, false},
		{"format,mount", []string{"--mode", "format,mount", layout}, "format,mount", "/mnt", tools, nil, false},
		{"destroy asks", []string{"--mode", "destroy", layout}, "destroy", "/mnt", tools, nil, false},
		{"destroy --yes-wipe-all-disks", []string{"--mode", "destroy", "--yes-wipe-all-disks", layout}, "destroy", "/mnt", tools, []string{"--yes-wipe-all-disks"}, false},
		{"destroy,format,mount asks", []string{"--mode", "destroy,format,mount", layout}, "destroy,format,mount", "/mnt", tools, nil, false},
		{"destroy,format,mount, flags after the file", []string{"--mode", "destroy,format,mount", layout, "--yes-wipe-all-disks", "--root-mountpoint", "/mnt/x"}, "destroy,format,mount", "/mnt/x", tools, []string{"--yes-wipe-all-disks"}, false},
		{"--yes-wipe-all-disks is meaningless for format", []string{"--mode", "format", "--yes-wipe-all-disks", layout}, "format", "/mnt", tools, nil, false},
		{"legacy disko never asks", []string{"--mode", "disko", layout}, "destroy,format,mount", "/mnt", tools, []string{"--yes-wipe-all-disks"}, false},
		{"legacy zap_create_mount never asks", []string{"--mode", "zap_create_mount", layout}, "destroy,format,mount", "/mnt", tools, []string{"--yes-wipe-all-disks"}, false},
		{"legacy create is format", []string{"--mode", "create", layout}, "format", "/mnt", tools, nil, false},
		{"--no-deps leaves PATH alone", []string{"--no-deps", "--mode", "format", layout}, "format", "/mnt", "", nil, false},
		{"--debug", []string{"--debug", layout}, "mount", "/mnt", tools, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr, got := runCLI(t, 0, tt.args...)
			if code != 0 || got == nil {
				t.Fatalf("exit %d, ran %v\nstdout: %s\nstderr: %s", code, got != nil, stdout, stderr)
			}
			want, err := scriptsFor(t, tt.root, tt.path).ByMode(tt.script)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.script, want) {
				t.Errorf("ran a script that is not the %s script for root %s, PATH %q", tt.script, tt.root, tt.path)
			}
			if strings.Join(got.args, " ") != strings.Join(tt.wantArgs, " ") || got.debug != tt.debug {
				t.Errorf("script args %q debug %v, want %q debug %v", got.args, got.debug, tt.wantArgs, tt.debug)
			}
			if !strings.HasPrefix(stderr, "disko version ") {
				t.Errorf("stderr does not begin with the version: %q", stderr)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "disk-config.json")
	if err := os.WriteFile(layout, []byte(layoutJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		scriptCode int
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no arguments print the usage and fail", 0, nil, 1, "--yes-wipe-all-disks", ""},
		{"--help", 0, []string{"--help"}, 0, "disko --mode destroy,format,mount ./disk-config.nix", ""},
		{"-h", 0, []string{"-h"}, 0, "--root-mountpoint DIR", ""},
		{"--version", 0, []string{"--version"}, 0, "", ""},
		{"the script's exit code is disko's", 3, []string{layout}, 3, "", ""},
		{"unknown mode", 0, []string{"--mode", "zap", layout}, 1, "", `aborted: mode must be one of "destroy", "format", "mount", "unmount", "format,mount" or "destroy,format,mount"`},
		{"missing file", 0, []string{"--mode", "format", "/nonexistent/disk-config.nix"}, 1, "", "aborted: disko config must be an existing file or flake must be set"},
		{"no file and no flake", 0, []string{"--mode", "format"}, 1, "", "aborted: disko config must be an existing file or flake must be set"},
		{"flake without #NAME", 0, []string{"--flake", "github:a/b"}, 1, "", "Please specify the name of the NixOS configuration"},
		{"two files", 0, []string{layout, layout}, 1, "USAGE:", ""},
		{"unknown flag", 0, []string{"--bogus", layout}, 1, "", "flag provided but not defined: -bogus"},
		{"--arg without its value", 0, []string{layout, "--arg", "disks"}, 1, "", "--arg needs NAME and a value"},
		{"a bad layout names the option", 0, []string{writeLayout(t, `{"disk":{"main":{"device":"/dev/x","content":{"type":"gpt","partitions":{"a":{"size":"5X"}}}}}}`)}, 1, "",
			`disko.devices.disk.main.content.partitions.a.size: "5X" is not a size`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr, _ := runCLI(t, tt.scriptCode, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("exit %d (want %d)\nstdout (want %q): %s\nstderr (want %q): %s", code, tt.wantCode, tt.wantStdout, stdout, tt.wantStderr, stderr)
			}
		})
	}
}

// TestHelpListsDiskoFlags checks that --help lists every flag and mode of disko's command
// line, so a disko user finds each one where disko's own help has it.
func TestHelpListsDiskoFlags(t *testing.T) {
	code, stdout, stderr, _ := runCLI(t, 0, "--help")
	if code != 0 {
		t.Fatalf("--help exited %d: %s", code, stderr)
	}
	for _, want := range []string{
		"--mode MODE", "--flake URI#NAME", "--arg NAME EXPR", "--argstr NAME VALUE", "--root-mountpoint DIR",
		"--dry-run", "--no-deps", "--yes-wipe-all-disks", "--debug",
		"destroy ", "format ", "mount ", "unmount ", "format,mount ", "destroy,format,mount ", "--mode disko",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help lacks %q:\n%s", want, stdout)
		}
	}
}

func writeLayout(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layout.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDryRun checks that --dry-run prints the path of the script it would run, with the
// argument it would pass, and runs nothing.
func TestDryRun(t *testing.T) {
	layout := writeLayout(t, layoutJSON)
	code, stdout, stderr, got := runCLI(t, 0, "--dry-run", "--mode", "destroy,format,mount", "--yes-wipe-all-disks", "--root-mountpoint", "/mnt/dry", layout)
	if code != 0 || got != nil {
		t.Fatalf("exit %d, ran %v: %s", code, got != nil, stderr)
	}
	file, arg, _ := strings.Cut(strings.TrimSpace(stdout), " ")
	t.Cleanup(func() { os.Remove(file) })
	if arg != "--yes-wipe-all-disks" {
		t.Errorf("printed %q, want the script's path and --yes-wipe-all-disks", stdout)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := scriptsFor(t, "/mnt/dry", "/nix/store/tools/bin").DestroyFormatMount; !bytes.Equal(b, want) {
		t.Errorf("%s is not the destroy,format,mount script", file)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: mode %v (%v), want 0755 so that it runs as printed", file, fi.Mode(), err)
	}
	if out, err := exec.Command("bash", "-n", file).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v: %s", file, err, out)
	}
}

// TestNixLayout runs a layout function with disko's --arg and --argstr, as
// `disko --arg disk '"/dev/x"' --argstr label 'a=b c' disk-config.nix`.
func TestNixLayout(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found: apt-get install nix-bin (.ci/run installs it)")
	}
	layout := filepath.Join(t.TempDir(), "disk-config.nix")
	os.WriteFile(layout, []byte(`{ disk ? "/dev/loop98", label }: { disko.devices.disk.main = { device = disk; content = { type = "gpt"; partitions.root = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; extraArgs = [ "-L" label ]; }; }; }; }; }`), 0o644)
	code, _, stderr, got := runCLI(t, 0, "--mode", "format", layout, "--arg", "disk", `"/dev/loop7"`, "--argstr", "label", "a=b c")
	if code != 0 || got == nil {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"/dev/loop7", "'a=b c'"} {
		if !bytes.Contains(got.script, []byte(want)) {
			t.Errorf("the format script does not contain %s", want)
		}
	}
}
