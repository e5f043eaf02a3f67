package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// parse runs the command line up to the point where it would install and
// returns the options it would install with.
func parse(t *testing.T, env []string, args ...string) (*install.Options, int, string) {
	t.Helper()
	var got *install.Options
	var stdout, stderr bytes.Buffer
	d := deps{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, env: env,
		install: func(_ context.Context, o install.Options) error { got = &o; return nil }}
	code := runWith(context.Background(), d, append([]string{"anywhere"}, args...))
	return got, code, stderr.String()
}

// storePaths are two existing paths, for the flags that need --store-paths.
func storePaths(t *testing.T) []string {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "disko"), filepath.Join(dir, "system")
	os.WriteFile(a, nil, 0o644)
	os.WriteFile(b, nil, 0o644)
	return []string{a, b}
}

// TestEveryNixosAnywhereFlagParses goes through every flag nixos-anywhere's
// --help lists and checks where each lands.
func TestEveryNixosAnywhereFlagParses(t *testing.T) {
	sp := storePaths(t)
	base := []string{"--flake", ".#host", "root@192.0.2.1"}
	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		check func(o *install.Options) bool
	}{
		{"-f", []string{"-f", ".#x", "h"}, nil, func(o *install.Options) bool { return o.Flake == ".#x" }},
		{"--flake", []string{"--flake", ".#x", "h"}, nil, func(o *install.Options) bool { return o.Flake == ".#x" }},
		{"--target-host", []string{"--flake", ".#x", "--target-host", "root@h"}, nil, func(o *install.Options) bool { return o.Target == "root@h" }},
		{"-i", append([]string{"-i", "/k1", "-i", "/k2"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.SSH.IdentityFiles, []string{"/k1", "/k2"})
		}},
		{"-p", append([]string{"-p", "2222"}, base...), nil, func(o *install.Options) bool { return o.SSH.Port == 2222 }},
		{"--ssh-port", append([]string{"--ssh-port", "2222"}, base...), nil, func(o *install.Options) bool { return o.SSH.Port == 2222 }},
		{"--ssh-option", append([]string{"--ssh-option", "ConnectTimeout=3", "--ssh-option", "User=a,b"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.SSH.SSHOptions, []string{"ConnectTimeout=3", "User=a,b"})
		}},
		{"-L", append([]string{"-L"}, base...), nil, func(o *install.Options) bool { return o.PrintBuildLogs }},
		{"--print-build-logs", append([]string{"--print-build-logs"}, base...), nil, func(o *install.Options) bool { return o.PrintBuildLogs }},
		{"--env-password", append([]string{"--env-password"}, base...), []string{"SSHPASS=pw"}, func(o *install.Options) bool { return o.SSH.Password == "pw" }},
		{"-s", []string{"-s", sp[0], sp[1], "h"}, nil, func(o *install.Options) bool { return reflect.DeepEqual(o.StorePaths, sp) }},
		{"--store-paths", []string{"--store-paths", sp[0], sp[1], "h"}, nil, func(o *install.Options) bool { return reflect.DeepEqual(o.StorePaths, sp) }},
		{"--kexec", append([]string{"--kexec", "https://x/k.tar.gz"}, base...), nil, func(o *install.Options) bool { return o.Kexec == "https://x/k.tar.gz" }},
		{"--force-kexec", append([]string{"--force-kexec", "--debug"}, base...), nil, func(o *install.Options) bool { return o.ForceKexec && o.Debug }},
		{"--kexec-extra-flags", append([]string{"--kexec-extra-flags", "--no-sync"}, base...), nil, func(o *install.Options) bool { return o.KexecExtraFlags == "--no-sync" }},
		{"--ssh-store-setting", append([]string{"--ssh-store-setting", "remote-store", "local%3Froot%3D%2Fmnt2"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.StoreSettings, [][2]string{{"remote-store", "local%3Froot%3D%2Fmnt2"}})
		}},
		{"--post-kexec-ssh-port", append([]string{"--post-kexec-ssh-port", "2200"}, base...), nil, func(o *install.Options) bool { return o.PostKexecSSHPort == 2200 && o.SSH.Port == 0 }},
		{"--copy-host-keys", append([]string{"--copy-host-keys"}, base...), nil, func(o *install.Options) bool { return o.CopyHostKeys }},
		{"--extra-files", append([]string{"--extra-files", "./extra"}, base...), nil, func(o *install.Options) bool { return o.ExtraFiles == "./extra" }},
		{"--chown", append([]string{"--chown", "/home/user", "1000:100", "--chown", "/srv", "0:0"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.Chown, []install.Chown{{Path: "/home/user", Owner: "1000:100"}, {Path: "/srv", Owner: "0:0"}})
		}},
		{"--disk-encryption-keys", append([]string{"--disk-encryption-keys", "/tmp/k", "/local/k"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.DiskEncryptionKeys, []install.DiskKey{{Remote: "/tmp/k", Local: "/local/k"}})
		}},
		{"--no-substitute-on-destination", append([]string{"--no-substitute-on-destination"}, base...), nil, func(o *install.Options) bool {
			return !o.SubstituteOnDestination && !o.UseMachineSubstituters
		}},
		{"--no-use-machine-substituters", append([]string{"--no-use-machine-substituters"}, base...), nil, func(o *install.Options) bool {
			return o.SubstituteOnDestination && !o.UseMachineSubstituters
		}},
		{"--debug", append([]string{"--debug"}, base...), nil, func(o *install.Options) bool { return o.Debug && o.SSH.Logger != nil }},
		{"--show-trace", append([]string{"--show-trace"}, base...), nil, func(o *install.Options) bool { return o.ShowTrace }},
		{"--option", append([]string{"--option", "substituters", "", "--option", "cores", "2"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.NixOptions, [][2]string{{"substituters", ""}, {"cores", "2"}})
		}},
		{"--from", append([]string{"--from", "https://cache.example"}, base...), nil, func(o *install.Options) bool { return o.From == "https://cache.example" }},
		{"--build-on", append([]string{"--build-on", "remote"}, base...), nil, func(o *install.Options) bool { return o.BuildOn == "remote" }},
		{"--build-on-remote", append([]string{"--build-on-remote"}, base...), nil, func(o *install.Options) bool { return o.BuildOn == "remote" }},
		{"--generate-hardware-config", append([]string{"--generate-hardware-config", "nixos-facter", "./facter.json"}, base...), nil, func(o *install.Options) bool {
			return *o.HardwareConfig == install.HardwareConfig{Kind: "nixos-facter", Path: "./facter.json"}
		}},
		{"--phases", append([]string{"--phases", "install,disko"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.Phases, []install.Phase{install.PhaseDisko, install.PhaseInstall})
		}},
		{"--disko-mode", append([]string{"--disko-mode", "mount"}, base...), nil, func(o *install.Options) bool { return o.DiskoMode == "mount" }},
		{"--no-disko-deps", append([]string{"--no-disko-deps"}, base...), nil, func(o *install.Options) bool { return o.NoDiskoDeps }},
		{"--stop-after-disko", append([]string{"--stop-after-disko"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.Phases, []install.Phase{install.PhaseKexec, install.PhaseDisko})
		}},
		{"--no-reboot", append([]string{"--no-reboot"}, base...), nil, func(o *install.Options) bool {
			return reflect.DeepEqual(o.Phases, []install.Phase{install.PhaseKexec, install.PhaseDisko, install.PhaseInstall})
		}},
		{"-t", append([]string{"-t"}, base...), nil, func(o *install.Options) bool { return o.Target == "root@192.0.2.1" }},
		{"--tty", append([]string{"--tty"}, base...), nil, func(o *install.Options) bool { return o.Target == "root@192.0.2.1" }},
		// Ours.
		{"--dry-run --json", append([]string{"--dry-run", "--json"}, base...), nil, func(o *install.Options) bool { return o.DryRun && o.JSON }},
		{"--disko-layout --disk", append([]string{"--disko-layout", "l.nix", "--disk", "main", "/dev/vdb", "--disk", "data=/dev/vdc"}, base...), nil, func(o *install.Options) bool {
			return o.DiskoLayout == "l.nix" && reflect.DeepEqual(o.Disks, map[string]string{"main": "/dev/vdb", "data": "/dev/vdc"})
		}},
		{"--state-file --restart", append([]string{"--state-file", "/s.json", "--restart"}, base...), nil, func(o *install.Options) bool { return o.StateFile == "/s.json" && o.Restart }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, code, stderr := parse(t, tc.env, tc.args...)
			if code != exitOK || o == nil {
				t.Fatalf("anywhere %s: exit %d, want 0; stderr:\n%s", strings.Join(tc.args, " "), code, stderr)
			}
			if !tc.check(o) {
				t.Errorf("anywhere %s: options %+v do not reflect the flag", strings.Join(tc.args, " "), *o)
			}
		})
	}
}

func TestHelpShowsExamples(t *testing.T) {
	var stdout bytes.Buffer
	code := runWith(context.Background(), deps{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stdout}, []string{"anywhere", "--help"})
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"Examples:", "anywhere --flake .#myhost root@192.0.2.10", "--dry-run", "--disk-encryption-keys REMOTE LOCAL", "SSHPASS"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag before the host", []string{"--flake", ".#x", "--frobnicate", "root@h"}, "flag provided but not defined: -frobnicate"},
		{"unknown flag alone is not the host", []string{"--flake", ".#x", "--root@h"}, "flag provided but not defined"},
		{"unknown flag after the host", []string{"root@h", "--flake", ".#x", "--nope"}, "flag provided but not defined: -nope"},
		{"two hosts", []string{"--flake", ".#x", "a", "b"}, "one target host expected"},
		{"no host", []string{"--flake", ".#x"}, "no target host"},
		{"nothing to install", []string{"root@h"}, "nothing to install"},
		{"flake without name", []string{"--flake", ".", "root@h"}, "no #NAME"},
		{"unknown phase", []string{"--flake", ".#x", "--phases", "disko,boot", "root@h"}, `unknown phase "boot"`},
		{"bad disko mode", []string{"--flake", ".#x", "--disko-mode", "destroy", "root@h"}, "want disko, format, mount, plan or apply"},
		{"store-paths with one path", []string{"root@h", "--store-paths", "/nix/store/x"}, "--store-paths takes two store paths"},
		{"chown with one word", []string{"--flake", ".#x", "root@h", "--chown", "/home"}, "--chown needs two values"},
		{"disk without layout", []string{"--flake", ".#x", "--disk", "main", "/dev/vdb", "root@h"}, "--disk needs --disko-layout"},
		{"build-on-remote vs local", []string{"--flake", ".#x", "--build-on", "local", "--build-on-remote", "root@h"}, "conflicts"},
		{"unknown store setting", []string{"--flake", ".#x", "--ssh-store-setting", "ssh-key", "/k", "root@h"}, "not supported"},
		{"bad ssh option", []string{"--flake", ".#x", "--ssh-option", "NoSuchOption=1", "root@h"}, "NoSuchOption is not an OpenSSH client option"},
		{"refused ssh option", []string{"--flake", ".#x", "--ssh-option", "ProxyCommand=nc %h %p", "root@h"}, "ProxyCommand is not supported: the built-in client never runs local commands; use ProxyJump"},
		{"bad ssh option value", []string{"--flake", ".#x", "--ssh-option", "AddressFamily=ipx", "root@h"}, `AddressFamily "ipx" for host "h": want any, inet or inet6`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, stderr := parse(t, nil, tc.args...)
			if code != exitBadArgs {
				t.Fatalf("anywhere %s: exit %d, want %d; stderr:\n%s", strings.Join(tc.args, " "), code, exitBadArgs, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("anywhere %s: stderr %q lacks %q", strings.Join(tc.args, " "), stderr, tc.want)
			}
		})
	}
}

// TestIgnoredSSHOptions: OpenSSH options that have no effect on the
// built-in client, as nixos-anywhere users pass them out of habit, are
// accepted with one warning line each, whatever their case or repetition.
func TestIgnoredSSHOptions(t *testing.T) {
	o, code, stderr := parse(t, nil, "--flake", ".#x", "--ssh-option", "LogLevel=ERROR", "--ssh-option", "controlmaster=auto",
		"--ssh-option", "ControlPath=/tmp/%C", "--ssh-option", "LOGLEVEL=QUIET", "--ssh-option", "ConnectionAttempts=3", "root@h")
	if code != exitOK {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitOK, stderr)
	}
	want := "warning: --ssh-option LogLevel has no effect: use --debug to log connections and commands\n" +
		"warning: --ssh-option ControlMaster has no effect: the built-in client keeps one connection per host open for the whole run and runs every command as a session on it; there is no control socket\n" +
		"warning: --ssh-option ControlPath has no effect: the built-in client keeps one connection per host open for the whole run and runs every command as a session on it; there is no control socket\n"
	if stderr != want {
		t.Errorf("stderr =\n%s\nwant\n%s", stderr, want)
	}
	if len(o.SSH.SSHOptions) != 5 {
		t.Errorf("SSHOptions = %q, want all five passed on", o.SSH.SSHOptions)
	}
}

func TestFlagsAfterTheHost(t *testing.T) {
	o, code, stderr := parse(t, nil, "root@192.0.2.1", "--flake", ".#x", "--phases", "disko,install", "-p", "2222", "--kexec-extra-flags", "--no-sync", "--copy-host-keys")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if o.Target != "root@192.0.2.1" || o.Flake != ".#x" || o.SSH.Port != 2222 || !o.CopyHostKeys || o.KexecExtraFlags != "--no-sync" ||
		!reflect.DeepEqual(o.Phases, []install.Phase{install.PhaseDisko, install.PhaseInstall}) {
		t.Errorf("options = %+v", *o)
	}
}

// TestSSHOptionOverridesEveryDefault checks the fix of nixos-anywhere's
// quirk: --ssh-option wins over -p, the user in the destination, ssh_config
// and the built-in host key policy.
func TestSSHOptionOverridesEveryDefault(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, "ssh_config")
	os.WriteFile(cfg, []byte("Host box\n  HostName 192.0.2.7\n  User fromconfig\n  Port 2200\n  StrictHostKeyChecking yes\n"), 0o644)
	o, code, stderr := parse(t, []string{"HOME=" + home}, "--flake", ".#x", "-p", "2222", "--ssh-config", cfg,
		"--ssh-option", "Port=2022", "--ssh-option", "User=override", "--ssh-option", "StrictHostKeyChecking=accept-new",
		"--ssh-option", "UserKnownHostsFile="+filepath.Join(home, "kh"), "alice@box")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	tg, err := remote.ParseTarget(o.Target)
	if err != nil {
		t.Fatal(err)
	}
	o.SSH.SystemConfigFile = "none"
	c, err := remote.Resolve(tg, o.SSH)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 2022 || c.User != "override" || c.HostName != "192.0.2.7" || c.StrictHostKeyChecking != "accept-new" ||
		!reflect.DeepEqual(c.UserKnownHostsFiles, []string{filepath.Join(home, "kh")}) {
		t.Errorf("resolved %+v; want port 2022, user override, host 192.0.2.7, accept-new, the given known_hosts", *c)
	}
}

func TestPostKexecPortWithoutSSHPort(t *testing.T) {
	o, code, stderr := parse(t, nil, "--flake", ".#x", "--post-kexec-ssh-port", "2200", "root@h")
	if code != exitOK || o.PostKexecSSHPort != 2200 {
		t.Fatalf("exit %d, port %v: %s", code, o, stderr)
	}
}

func TestNormalizeArgs(t *testing.T) {
	fl := flags()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"root@h", "--flake", ".#x"}, []string{"--flake", ".#x", "--", "root@h"}},
		{[]string{"-s", "a", "b", "h"}, []string{"-s", "a\x00b", "--", "h"}},
		{[]string{"--disk", "main=/dev/x", "h"}, []string{"--disk", "main\x00/dev/x", "--", "h"}},
		{[]string{"--kexec-extra-flags", "--no-sync", "h"}, []string{"--kexec-extra-flags", "--no-sync", "--", "h"}},
		{[]string{"--unknown", "h"}, []string{"--unknown", "--", "h"}},
		{[]string{"--flake=.#x", "--", "-weird-host"}, []string{"--flake=.#x", "--", "-weird-host"}},
	} {
		got := normalizeArgs(fl, append([]string{"anywhere"}, tc.in...))[1:]
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWaitTimeouts: the waits after kexec and reboot are bounded by flags
// of their own, 10 minutes each unless told, and a negative bound is a
// usage error.
func TestWaitTimeouts(t *testing.T) {
	o, code, stderr := parse(t, nil, "--flake", ".#x", "root@h")
	if code != exitOK || o.KexecTimeout != install.DefaultKexecTimeout || o.RebootTimeout != install.DefaultRebootTimeout {
		t.Fatalf("defaults: exit %d, kexec %s, reboot %s\n%s", code, o.KexecTimeout, o.RebootTimeout, stderr)
	}
	o, code, stderr = parse(t, nil, "--flake", ".#x", "--kexec-timeout", "90s", "--reboot-timeout", "20m", "root@h")
	if code != exitOK || o.KexecTimeout != 90*time.Second || o.RebootTimeout != 20*time.Minute {
		t.Fatalf("--kexec-timeout 90s --reboot-timeout 20m: exit %d, kexec %v, reboot %v\n%s", code, o.KexecTimeout, o.RebootTimeout, stderr)
	}
	if _, code, stderr = parse(t, nil, "--flake", ".#x", "--kexec-timeout", "-1m", "root@h"); code != exitBadArgs || !strings.Contains(stderr, "--kexec-timeout") {
		t.Errorf("--kexec-timeout -1m: exit %d, want %d and the flag named:\n%s", code, exitBadArgs, stderr)
	}
}
