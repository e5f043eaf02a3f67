package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
)

// runCLI runs the command in-process as uid and returns its exit code and output.
func runCLI(t *testing.T, uid int, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr,
		getenv: func(string) string { return "" }, geteuid: func() int { return uid }}
	code := run(context.Background(), append([]string{"disko-install"}, args...), e)
	return code, stdout.String(), stderr.String()
}

// TestCommandLine checks what disko-install refuses before it evaluates anything, with
// disko-install's messages and its exit code 1, and that --help lists every flag.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		uid        int
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{"no arguments print the usage and fail", 0, nil, 1, []string{"USAGE:"}, ""},
		{"--help lists every flag with an example", 1000, []string{"--help"}, 0, []string{
			"--flake FLAKE_URI#NAME, -f", "--disk NAME DEVICE", "--mode MODE", "--write-efi-boot-entries",
			"--system-config JSON", "--extra-files SOURCE DEST", "--option NAME VALUE", "--mount-point PATH",
			"(default: \"/mnt/disko-install-root\")", "--dry-run", "--show-trace", "--debug, -d", "--help, -h",
			"disko-install --flake .#mymachine --disk main /dev/sdb"}, ""},
		{"-h", 0, []string{"-h"}, 0, []string{"USAGE:"}, ""},
		{"no --flake", 0, []string{"--disk", "main", "/dev/sdb"}, 1, nil, "Please specify the flake-uri with --flake to use for installation."},
		{"not root", 1000, []string{"--flake", ".#x", "--disk", "main", "/dev/sdb"}, 1, nil, "This script must be run as root"},
		{"no #NAME", 0, []string{"--flake", "github:a/b", "--disk", "main", "/dev/sdb"}, 1, nil, "Please specify the name of the NixOS configuration to be installed"},
		{"bad mode", 0, []string{"--flake", ".#x", "--mode", "destroy"}, 1, nil, "Invalid mode: destroy\nValid modes are: format, mount"},
		{"--disk with one word", 0, []string{"--flake", ".#x", "--disk", "main"}, 1, nil, "Option --disk requires two arguments: disk_name, device_path"},
		{"--extra-files with one word", 0, []string{"--flake", ".#x", "--extra-files", "a"}, 1, nil, "Option --extra-files requires two arguments: source, destination"},
		{"--option with one word", 0, []string{"--flake", ".#x", "--option", "a"}, 1, nil, "Option --option requires two arguments: key, value"},
		{"--system-config not an object", 0, []string{"--flake", ".#x", "--system-config", "[1]"}, 1, nil, "--system-config must be a JSON object"},
		{"a stray argument", 0, []string{"--flake", ".#x", "stray"}, 1, nil, "Unknown option: stray"},
		{"unknown flag", 0, []string{"--flake", ".#x", "--reference-lock-file", "f"}, 1, nil, "flag provided but not defined: -reference-lock-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.uid, tt.args...)
			ok := code == tt.wantCode && strings.Contains(stderr, tt.wantStderr)
			for _, w := range tt.wantStdout {
				ok = ok && strings.Contains(stdout, w)
			}
			if !ok {
				t.Errorf("exit %d (want %d)\nstdout (want %q): %s\nstderr (want %q): %s", code, tt.wantCode, tt.wantStdout, stdout, tt.wantStderr, stderr)
			}
		})
	}
}

// TestParse checks that the two-word flags keep their words apart, whatever they hold.
func TestParse(t *testing.T) {
	var got *options
	app := newApp(env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, geteuid: func() int { return 0 }})
	app.Action = func(c *cli.Context) error {
		o, err := parse(c, env{geteuid: func() int { return 0 }})
		got = o
		return err
	}
	args := []string{"disko-install", "--flake", "path:/a b#my=host", "--disk", "main", "/dev/disk/by-id/usb-a=b",
		"--disk", "data", "/dev/sdc", "--extra-files", "./key file", "/etc/ssh/key=1", "--option", "substituters", "",
		"--mode", "mount", "--write-efi-boot-entries", "--system-config", `{"a":1}`, "--mount-point", "/mnt/x", "--dry-run", "-d", "--show-trace"}
	if err := app.Run(cliargs.Normalize(cliargs.Spec{Flags: app.Flags, Pairs: pairFlags, Sep: pairSep}, args)); err != nil {
		t.Fatal(err)
	}
	want := options{flake: "path:/a b", name: "my=host", mode: "mount", writeEFI: true, systemConfig: `{"a":1}`, systemConfigSet: true,
		mountPoint: "/mnt/x", dryRun: true, debug: true, showTrace: true}
	if got.flake != want.flake || got.name != want.name || got.mode != want.mode || got.writeEFI != want.writeEFI ||
		got.systemConfig != want.systemConfig || got.mountPoint != want.mountPoint || !got.dryRun || !got.debug || !got.showTrace {
		t.Errorf("options = %+v, want %+v", got, want)
	}
	if got.disks["main"] != "/dev/disk/by-id/usb-a=b" || got.disks["data"] != "/dev/sdc" || strings.Join(got.diskOrder, " ") != "/dev/disk/by-id/usb-a=b /dev/sdc" {
		t.Errorf("disks = %v in order %v", got.disks, got.diskOrder)
	}
	if len(got.extraFiles) != 1 || got.extraFiles[0] != [2]string{"./key file", "/etc/ssh/key=1"} {
		t.Errorf("extra files = %q", got.extraFiles)
	}
	if len(got.nixOptions) != 1 || got.nixOptions[0] != [2]string{"substituters", ""} {
		t.Errorf("nix options = %q", got.nixOptions)
	}
}
