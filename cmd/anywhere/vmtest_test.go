package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// vmTestLayout is the layout of the --vm-test tests (ESP, LUKS, ext4 root on /dev/vda).
const vmTestLayout = "testdata/vm-test-layout.nix"

// TestVMTestCommandLine: what --vm-test refuses before any VM boots.
func TestVMTestCommandLine(t *testing.T) {
	sp := storePaths(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a target host", []string{"--vm-test", "--flake", ".#x", "root@192.0.2.1"}, "no target host"},
		{"--store-paths without the layout", []string{"--vm-test", "--store-paths", sp[0], sp[1]}, "--vm-test --store-paths needs --disko-layout FILE"},
		{"its own logins", []string{"--vm-test", "--flake", ".#x", "-i", "/k"}, "--i does not apply"},
		{"its own phases", []string{"--vm-test", "--flake", ".#x", "--phases", "disko"}, "--phases does not apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, code, stderr := parse(t, nil, tc.args...)
			if code != exitBadArgs || o != nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q, want it to contain %q", code, exitBadArgs, stderr, tc.want)
			}
		})
	}
}

// vmStandIns are what --vm-test installs in the tests: the stand-in installer tarball,
// and the stand-in system for vmTestLayout with its disk script.
type vmStandIns struct {
	installer *testvm.Installer
	system    *testvm.System
	keyFile   string // the LUKS key (--disk-encryption-keys /tmp/secret.key)
	extra     string // --extra-files: the key again, as the initrd secret's source
}

// buildVMStandIns builds the stand-ins; a system that is broken gets no initrd
// secret, so its initrd cannot open the LUKS container at boot.
func buildVMStandIns(t *testing.T, ctx context.Context, broken bool) *vmStandIns {
	t.Helper()
	inst, err := testvm.BuildInstaller(ctx, testvm.BuildOptions{Log: testvm.LogT(t)})
	if errors.Is(err, testvm.ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	raw, err := (&eval.Evaluator{}).Devices(ctx, eval.Source{Path: vmTestLayout})
	if err != nil {
		t.Fatal(err)
	}
	d, err := config.Load(raw, config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := codegen.Generate(d, codegen.Options{RootMountpoint: "/mnt"})
	if err != nil {
		t.Fatal(err)
	}
	script, err := scripts.ByMode("destroy,format,mount")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nixos.JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	so := testvm.SystemOptions{NixOSConfig: cfg, DiskoScript: script, Log: testvm.LogT(t),
		InitrdSecrets: map[string]string{"/tmp/secret.key": "/etc/secrets/initrd/secret.key"}}
	if broken {
		so.InitrdSecrets = nil
		so.Hostname = "broken"
	}
	sys, err := testvm.BuildSystem(ctx, so)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &vmStandIns{installer: inst, system: sys, keyFile: filepath.Join(dir, "secret.key"), extra: filepath.Join(dir, "extra")}
	secret := filepath.Join(s.extra, "etc/secrets/initrd/secret.key")
	if err := os.MkdirAll(filepath.Dir(secret), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{s.keyFile, secret} {
		if err := os.WriteFile(f, []byte("vm-test secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// storePathArgs name the stand-ins by their store paths, with the layout they were built for.
func (s *vmStandIns) storePathArgs() []string {
	return []string{"--store-paths", s.system.DiskoScript, s.system.Toplevel, "--disko-layout", vmTestLayout}
}

// flakeArgs name the stand-ins through a flake: testdata/vm-test-flake with the
// layout and a copy of the stand-in system's sources beside it, in a temporary
// directory; its nixosConfigurations.host builds the same toplevel.
func (s *vmStandIns) flakeArgs(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{
		"testdata/vm-test-flake/flake.nix": "flake.nix",
		vmTestLayout:                       "layout.nix",
		s.system.Source:                    "system",
	} {
		if out, err := exec.Command("cp", "-a", "--", src, filepath.Join(dir, dst)).CombinedOutput(); err != nil {
			t.Fatalf("cp -a %s: %v: %s", src, err, out)
		}
	}
	attr := dir + "#nixosConfigurations.host.config.system.build.toplevel.outPath"
	var stderr bytes.Buffer
	eval := exec.Command("nix", "eval", "--raw", attr)
	eval.Stderr = &stderr
	out, err := eval.Output()
	if err != nil {
		t.Fatalf("nix eval %s: %v: %s", attr, err, stderr.Bytes())
	}
	if string(out) != s.system.Toplevel {
		t.Fatalf("the flake's toplevel is %s, want the stand-in system %s", out, s.system.Toplevel)
	}
	return []string{"--flake", dir + "#host"}
}

// runVMTest runs anywhere --vm-test on the stand-ins named by source (storePathArgs or
// flakeArgs), with extra flags and stdin.
func runVMTest(t *testing.T, ctx context.Context, s *vmStandIns, stdin string, source []string, extra ...string) (int, string) {
	t.Helper()
	args := append(append([]string{"anywhere", "--vm-test"}, source...),
		"--kexec", s.installer.Tarball,
		"--disk-encryption-keys", "/tmp/secret.key", s.keyFile, "--extra-files", s.extra)
	args = append(args, extra...)
	var out bytes.Buffer
	env := []string{"HOME=" + t.TempDir(), "NIX_CONFIG=" + nixConfig, "PATH=" + os.Getenv("PATH")}
	start := time.Now()
	code := runWith(ctx, deps{stdin: strings.NewReader(stdin), stdout: &out, stderr: &out, env: env}, args)
	t.Logf("anywhere --vm-test: exit %d after %s:\n%s", code, time.Since(start).Round(time.Second), out.String())
	return code, out.String()
}

// vmTestContext skips a --vm-test test that cannot run here and bounds it in time.
func vmTestContext(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots VMs; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("builds into /nix/store: run as root")
	}
	for _, tool := range []string{"nix-store", "nix-instantiate", "nix"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: nix-bin)", tool)
		}
	}
	t.Setenv("NIX_CONFIG", nixConfig)
	return testvm.ContextT(t)
}

// TestVMTest: --vm-test installs the stand-in system from the stand-in installer into a
// VM, checks it and opens a shell in it (--interactive); a system whose initrd lacks the LUKS key it needs fails at the
// reboot, with the console's end shown.
func TestVMTest(t *testing.T) {
	ctx, cancel := vmTestContext(t)
	defer cancel()

	t.Run("passes", func(t *testing.T) {
		s := buildVMStandIns(t, ctx, false)
		// --interactive: the shell reads its commands from stdin (no terminal here).
		code, out := runVMTest(t, ctx, s, "echo shell in $(cat /proc/sys/kernel/hostname)\nexit 3\n", s.storePathArgs(), "--interactive")
		expectVMTestPassed(t, code, out, "vm-test: booting the installer "+s.installer.Tarball,
			"testvm: guest up in", // with the accelerator it used
			"shell in demo", "vm-test: removing the VM")
	})
	t.Run("broken system", func(t *testing.T) {
		s := buildVMStandIns(t, ctx, true)
		code, out := runVMTest(t, ctx, s, "", s.storePathArgs(), "--reboot-timeout", "4m") // time for stage 1 to say why, under TCG
		expectVMTestFailed(t, code, out)
	})
}

// TestVMTestFlake: --vm-test --flake DIR#host evaluates the layout from the flake's
// nixosConfigurations.host.config.disko.devices, compiles the disk script for the
// VM's disks, builds the configuration's system.build.toplevel (the stand-in
// system as a derivation) and installs it; a broken system fails at the reboot.
func TestVMTestFlake(t *testing.T) {
	ctx, cancel := vmTestContext(t)
	defer cancel()

	t.Run("passes", func(t *testing.T) {
		s := buildVMStandIns(t, ctx, false)
		code, out := runVMTest(t, ctx, s, "", s.flakeArgs(t))
		expectVMTestPassed(t, code, out, "build nixosConfigurations.\"host\".config.system.build.toplevel",
			"check the new system: hostname demo")
	})
	t.Run("broken system", func(t *testing.T) {
		s := buildVMStandIns(t, ctx, true)
		code, out := runVMTest(t, ctx, s, "", s.flakeArgs(t), "--reboot-timeout", "4m")
		expectVMTestFailed(t, code, out)
	})
}

// expectVMTestPassed checks a --vm-test run that passed: every phase, the host key
// and mount checks, and the lines in more.
func expectVMTestPassed(t *testing.T, code int, out string, more ...string) {
	t.Helper()
	if code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, want := range append([]string{
		"### disko: done in", "### install: done in", "### reboot: done in",
		"host key verified: the new system presents the key installed for it",
		"and mounts /, /boot as the layout says",
		"vm-test: passed in",
	}, more...) {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
}

// expectVMTestFailed checks a --vm-test run of the broken system: it fails after the
// install, showing the console's end with stage 1's reason.
func expectVMTestFailed(t *testing.T, code int, out string) {
	t.Helper()
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	for _, want := range []string{"vm-test: the VM's console, last 40 lines:", "### install: done in", "the key file /tmp/secret.key of crypted is not in the initrd"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	if strings.Contains(out, "vm-test: passed") {
		t.Error("a broken system passed")
	}
	if strings.Contains(out, "to resume") {
		t.Error("the failure offers to resume a run whose VM is gone")
	}
}
