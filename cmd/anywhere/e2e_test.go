package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// extraFiles makes an --extra-files tree: a secret file (0600), a user's
// authorized_keys (0600, chowned by --chown), a symlink, a file with its
// own owner, and an ECDSA host key that --copy-host-keys must not overwrite.
func extraFiles(t *testing.T) (string, []byte) {
	dir := filepath.Join(t.TempDir(), "extra")
	ecdsa := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nfrom-extra-files\n-----END OPENSSH PRIVATE KEY-----\n")
	for p, c := range map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"etc/secret":                       {[]byte("extra secret\n"), 0o600},
		"etc/ssh/ssh_host_ecdsa_key":       {ecdsa, 0o600},
		"home/user/.ssh/authorized_keys":   {[]byte("ssh-ed25519 AAAA test\n"), 0o600},
		"home/user/bin/tool":               {[]byte("#!/bin/sh\n"), 0o755},
		"var/lib/anywhere-extra/readme.md": {[]byte("hello\n"), 0o644},
	} {
		f := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, c.data, c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f, c.mode)
	}
	os.Chmod(filepath.Join(dir, "home/user/.ssh"), 0o700)
	// A file whose owner was set on purpose (anywhere runs as root here, so
	// owners are kept, unlike the root-owned rest of the tree).
	owned := filepath.Join(dir, "srv/owned")
	os.MkdirAll(filepath.Dir(owned), 0o755)
	os.WriteFile(owned, []byte("mine\n"), 0o640)
	if err := os.Chown(owned, 1234, 2345); err != nil {
		t.Fatal(err)
	}
	os.Symlink("../secret", filepath.Join(dir, "etc/ssh/link-to-secret"))
	return dir, ecdsa
}

// targetHostKeys replaces the target's /etc/ssh host keys (in its private
// /etc, never the machine's) with a fresh ed25519 key, for --copy-host-keys.
func (w *world) targetHostKeys() ([]byte, ssh.PublicKey) {
	priv, pub := hostKeyPair(w.t)
	w.sh(fmt.Sprintf("rm -f /etc/ssh/ssh_host_*; umask 077; printf '%%s' %s > /etc/ssh/ssh_host_ed25519_key; printf '%%s\\n' %s > /etc/ssh/ssh_host_ed25519_key.pub; chmod 644 /etc/ssh/ssh_host_ed25519_key.pub",
		shell.Quote(string(priv)), shell.Quote(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))))))
	return priv, pub
}

// TestInstallOntoLoopDisk is the main path, as root and as sudo users: the
// disko phase formats and mounts the target's loop disk with a script
// compiled from the layout, the install phase copies a real closure into
// its store and runs the system's activation in a chroot; files, modes,
// owners and host keys are checked on the target. Then the reboot phase
// runs against the recording stand-in, and the "new system" must present
// the installed host key. A secret disk key never shows in argv, output,
// the state file or a Nix store.
func TestInstallOntoLoopDisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testtarget.Options
		env  []string
	}{
		{"root", testtarget.Options{}, nil},
		{"sudo", testtarget.Options{User: "alice"}, nil},
		{"sudo-password", testtarget.Options{User: "bob", Password: "pw of bob"}, []string{"SUDO_PASSWORD=pw of bob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{target: tc.opts})
			installOntoLoopDisk(t, w, tc.env)
		})
	}
}

func installOntoLoopDisk(t *testing.T, w *world, env []string) {
	ctx := ctxFor(t, 5*time.Minute)
	targetKey, targetPub := w.targetHostKeys()
	extra, extraECDSA := extraFiles(t)
	sampler := sampleCmdlines(w.secret)
	res := w.run(ctx, env, nil, w.args(
		"--flake", w.fix.Flake,
		"--disko-layout", w.fix.Layout, "--disk", "main", w.loop,
		"--phases", "kexec,disko,install",
		"--force-kexec=false",
		"--extra-files", extra,
		"--chown", "/home/user", "1000:100",
		"--copy-host-keys",
		"--disk-encryption-keys", "/run/anywhere-test/disk.key", w.keyFile,
	)...)
	// The target is this machine, whose kernel cannot kexec: the kexec
	// phase must refuse before it changes anything.
	if res.code == 0 {
		t.Fatalf("the kexec phase on a kernel without kexec must fail, got:\n%s", res)
	}
	if !strings.Contains(res.stderr, "refusing to kexec") || !strings.Contains(res.stderr, "no kexec support") {
		t.Fatalf("want the kexec refusal, got:\n%s", res)
	}
	res = w.run(ctx, env, nil, w.args(
		"--flake", w.fix.Flake,
		"--disko-layout", w.fix.Layout, "--disk", "main", w.loop,
		"--phases", "disko,install",
		"--extra-files", extra,
		"--chown", "/home/user", "1000:100",
		"--copy-host-keys",
		"--disk-encryption-keys", "/run/anywhere-test/disk.key", w.keyFile,
	)...)
	hits, samples := sampler.Stop()
	if res.code != 0 {
		t.Fatalf("install failed:\n%s\n%s", res, w.tt.Logs())
	}
	t.Logf("install output:\n%s", res.stderr)

	// Disks: the root is mounted from the loop disk's second partition, swap is on.
	if got := w.sh("findmnt -n -o SOURCE,FSTYPE " + w.mnt); got != w.loop+"p2 ext4" {
		t.Errorf("findmnt %s = %q, want %sp2 ext4", w.mnt, got, w.loop)
	}
	if swaps := w.sh("cat /proc/swaps"); !strings.Contains(swaps, w.loop+"p1") {
		t.Errorf("swap on %sp1 is not active:\n%s", w.loop, swaps)
	}
	// The disk key was there, 0600 and root's, while the disk script ran; it is gone now.
	sum := sha256.Sum256([]byte(w.secret))
	if got := w.sh("cat /run/anywhere-test/disk.key.seen"); got != fmt.Sprintf("600 root\n%x", sum) {
		t.Errorf("the layout's hook saw the key as %q, want mode 600, owner root and its hash", got)
	}
	if _, err := w.shErr("test ! -e /run/anywhere-test/disk.key"); err != nil {
		t.Errorf("the disk key is still on the target after the disko phase")
	}

	// The system: a valid store path in the chroot store, the profile, the activation.
	toplevel := w.fix.build(t, "toplevel")[0]
	w.sh(fmt.Sprintf("nix-store --store 'local?root=%s' --verify-path %s", w.mnt, toplevel))
	if got := w.sh("cd " + w.mnt + "/nix/var/nix/profiles && readlink $(readlink system)"); got != toplevel {
		t.Errorf("system profile -> %q, want %s", got, toplevel)
	}
	if got := w.sh("cat " + w.mnt + "/var/lib/anywhere-test/ran"); got != "activate IN_NIXOS_ENTER=1\nswitch-to-configuration boot bootloader=1" {
		t.Errorf("activation record = %q, want activate then switch-to-configuration boot with NIXOS_INSTALL_BOOTLOADER=1", got)
	}
	if got := w.sh("stat -c %a " + w.mnt + "/tmp"); got != "1777" {
		t.Errorf("%s/tmp has mode %s, want 1777", w.mnt, got)
	}

	// Extra files: modes kept, root-owned (anywhere runs as root here, and
	// the tree is root's), --chown applied recursively, the symlink kept.
	for p, want := range map[string]string{
		"etc/secret":                       "600 0:0",
		"home/user":                        "755 1000:100",
		"home/user/.ssh":                   "700 1000:100",
		"home/user/.ssh/authorized_keys":   "600 1000:100",
		"home/user/bin/tool":               "755 1000:100",
		"var/lib/anywhere-extra/readme.md": "644 0:0",
		"srv/owned":                        "640 1234:2345",
	} {
		if got := w.sh("stat -c '%a %u:%g' " + w.mnt + "/" + p); got != want {
			t.Errorf("%s: mode and owner %q, want %q", p, got, want)
		}
	}
	if got := w.sh("readlink " + w.mnt + "/etc/ssh/link-to-secret"); got != "../secret" {
		t.Errorf("symlink -> %q, want ../secret", got)
	}
	// Host keys: the target's copied (0600), the one from --extra-files kept.
	if got := w.sh("cat " + w.mnt + "/etc/ssh/ssh_host_ed25519_key"); got != strings.TrimSpace(string(targetKey)) {
		t.Errorf("the target's ed25519 host key was not copied")
	}
	if got := w.sh("stat -c %a " + w.mnt + "/etc/ssh/ssh_host_ed25519_key"); got != "600" {
		t.Errorf("copied host key has mode %s, want 600", got)
	}
	if got := w.sh("cat " + w.mnt + "/etc/ssh/ssh_host_ecdsa_key"); got != strings.TrimSpace(string(extraECDSA)) {
		t.Errorf("--copy-host-keys overwrote the ecdsa key from --extra-files: %q", got)
	}

	// Progress: one line per step with its duration; JSON events for the phases.
	for _, want := range []install.Event{
		{Event: "step", Phase: "disko", Step: "run the disk script", Status: "ok"},
		{Event: "step", Phase: "install", Step: "copy the system closure", Status: "ok"},
		{Event: "step", Phase: "install", Step: "install the system", Status: "ok"},
		{Event: "done"},
	} {
		if !res.has(want) {
			t.Errorf("no event %+v in:\n%s", want, res.stdout)
		}
	}
	if !strings.Contains(res.stderr, "disko: run the disk script (") {
		t.Errorf("no human step line with a duration in:\n%s", res.stderr)
	}

	// Reboot, against the recording stand-in. When the target "reboots", it
	// comes back with the host key installed for it (the copied one).
	var rebootRes result
	restarted := make(chan string, 1)
	var once sync.Once
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if slicesContains(w.tt.Records(), "reboot") {
				once.Do(func() {
					mounted, _ := w.shErr("findmnt -n " + w.mnt + " || echo unmounted; grep -c " + filepath.Base(w.loop) + " /proc/swaps || true")
					os.WriteFile(filepath.Join(w.tt.Dir, "ssh_host_ed25519_key"), targetKey, 0o600)
					w.tt.Stop()
					time.Sleep(1500 * time.Millisecond)
					w.tt.Restart()
					restarted <- mounted
				})
				return
			}
		}
	}()
	sampler = sampleCmdlines(w.secret)
	rebootRes = w.run(ctx, env, nil, w.args("--flake", w.fix.Flake, "--disko-layout", w.fix.Layout, "--disk", "main", w.loop, "--phases", "disko,install,reboot")...)
	hits2, samples2 := sampler.Stop()
	hits, samples = append(hits, hits2...), samples+samples2
	if rebootRes.code != 0 {
		t.Fatalf("reboot phase failed:\n%s\n%s", rebootRes, w.tt.Logs())
	}
	t.Logf("reboot output:\n%s", rebootRes.stderr)
	select {
	case got := <-restarted:
		if got != "unmounted\n0" {
			t.Errorf("before rebooting, %s and the swap should be off; findmnt and swap count: %q", w.mnt, got)
		}
	default:
		t.Error("the reboot stand-in was never called")
	}
	for _, want := range []install.Event{
		{Event: "skipped", Phase: "disko", Message: "done in a previous run"},
		{Event: "skipped", Phase: "install", Message: "done in a previous run"},
		{Event: "info", Phase: "reboot", Message: "host key verified"},
	} {
		if !rebootRes.has(want) {
			t.Errorf("no event %+v in:\n%s", want, rebootRes.stdout)
		}
	}
	if e := rebootRes.find(install.Event{Event: "info", Phase: "reboot"}); e == nil || !strings.Contains(e.Message, ssh.FingerprintSHA256(targetPub)) {
		t.Errorf("the verified key is not the installed one (%s): %+v", ssh.FingerprintSHA256(targetPub), e)
	}

	// The secret: never in a command line, the output, the state file, or a store.
	if samples < 10 || len(hits) > 0 {
		t.Errorf("the disk key appeared in %d of %d process-list samples: %v", len(hits), samples, hits)
	}
	for name, s := range map[string]string{"stdout": res.stdout + rebootRes.stdout, "stderr": res.stderr + rebootRes.stderr, "state file": string(mustRead(t, w.state))} {
		if strings.Contains(s, w.secret) {
			t.Errorf("the disk key appears in %s", name)
		}
	}
	closure, err := exec.Command("nix-store", "-qR", toplevel).Output()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-rlF", w.secret}, strings.Fields(string(closure))...)
	if out, _ := exec.Command("grep", args...).Output(); len(out) > 0 {
		t.Errorf("the disk key is in the local store: %s", out)
	}
	if out, _ := exec.Command("grep", "-rlF", w.secret, filepath.Join(w.tt.Dir, "mnt")).Output(); len(out) > 0 {
		t.Errorf("the disk key is under the mount point: %s", out)
	}
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestDryRunChangesNothing prints the plan with the disk's size and the
// closure size, and leaves the disk and the state alone.
func TestDryRunChangesNothing(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := ctxFor(t, 2*time.Minute)
	var stdout, stderr bytes.Buffer
	env := []string{"HOME=" + w.home, "NIX_CONFIG=" + nixConfig, "PATH=" + os.Getenv("PATH")}
	d := deps{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, env: env, checkDisk: testtarget.RefuseUnlessOwnLoop}
	code := runWith(ctx, d, append([]string{"anywhere", "--dry-run"}, w.args("--flake", w.fix.Flake, "--phases", "disko,install,reboot")...))
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("plan:\n%s", stdout.String())
	for _, want := range []string{
		"Plan for root@" + w.tt.Addr(),
		"disk main: " + w.loop + " WILL BE WIPED: 512.0 MiB, no model; holds empty",
		"closure:     4 paths, 3.9 MiB (built locally)",
		"disko    run",
		"install  run",
		"reboot   run",
		"Dry run: nothing was changed.",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if _, err := os.Stat(w.state); err == nil {
		t.Error("a dry run wrote the state file")
	}
	if out, _ := exec.Command("blkid", "-p", w.loop).CombinedOutput(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("a dry run changed the disk: blkid says %s", out)
	}

	// The same with --json: one plan event.
	res := w.run(ctx, nil, nil, append([]string{"--dry-run"}, w.args("--flake", w.fix.Flake, "--phases", "disko,install")...)...)
	plan := res.find(install.Event{Event: "plan"})
	if res.code != 0 || plan == nil {
		t.Fatalf("dry run --json: no plan event:\n%s", res)
	}
	disks, _ := plan.Data["disks"].([]any)
	if len(disks) != 1 || disks[0].(map[string]any)["action"] != "wipe" || disks[0].(map[string]any)["sizeBytes"].(float64) != 512<<20 {
		t.Errorf("plan disks = %v", plan.Data["disks"])
	}
}

// TestRefusesForeignDisks never lets a layout touch a disk that is not the
// test's own loop device.
func TestRefusesForeignDisks(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := ctxFor(t, 2*time.Minute)
	for _, dev := range []string{"/dev/vda", "/dev/loop250"} {
		res := w.run(ctx, nil, nil, w.args("--flake", w.fix.Flake, "--disko-layout", w.fix.Layout, "--disk", "main", dev, "--phases", "disko")...)
		if res.code != 1 || !strings.Contains(res.stderr, "refusing "+dev) {
			t.Errorf("--disk main %s: want a refusal, got:\n%s", dev, res)
		}
	}
	if out, _ := exec.Command("blkid", "-p", w.loop).CombinedOutput(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("the loop disk was changed: %s", out)
	}
}

// TestChangedHostKeyIsRefused: before anything runs (known_hosts has
// another key), and after the reboot (the new system presents a key other
// than the one installed for it).
func TestChangedHostKeyIsRefused(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := ctxFor(t, 2*time.Minute)
	if err := w.tt.RotateHostKeys(); err != nil {
		t.Fatal(err)
	}
	w.tt.Restart()
	res := w.run(ctx, nil, nil, w.args("--flake", w.fix.Flake, "--disko-layout", w.fix.Layout, "--disk", "main", w.loop, "--phases", "disko,install")...)
	if res.code != 1 || !strings.Contains(res.stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("a changed host key: want a refusal, got:\n%s", res)
	}
	if _, err := os.Stat(w.state); err == nil {
		t.Error("the state file was written although nothing ran")
	}

	// After the reboot: the installed key says X, the machine answers with Y.
	w.knownHosts = w.tt.WriteKnownHosts("known_hosts2")
	_, installed := hostKeyPair(t)
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(installed)))
	if err := os.MkdirAll(filepath.Join(w.mnt, "etc/ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(w.mnt, "etc/ssh/ssh_host_ed25519_key.pub"), []byte(pub+"\n"), 0o644)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 300 {
			if slicesContains(w.tt.Records(), "reboot") {
				w.tt.Stop()
				time.Sleep(1500 * time.Millisecond)
				w.tt.Restart() // same (other) keys: not the installed one
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	res = w.run(ctx, nil, nil, w.args("--flake", w.fix.Flake, "--phases", "reboot")...)
	<-done
	if res.code != 1 || !strings.Contains(res.stderr, "host key verification failed") || !strings.Contains(res.stderr, ssh.FingerprintSHA256(installed)) {
		t.Fatalf("a new system with the wrong host key: want a refusal naming the installed key, got:\n%s", res)
	}
}

// TestResumeAfterDroppedConnection cuts the target's sshd in the middle of
// the closure copy, brings it back, and re-runs the same command: the disko
// phase is not run again, the filesystems are mounted again, and the copy
// sends only what is missing.
func TestResumeAfterDroppedConnection(t *testing.T) {
	w := newWorld(t, worldOptions{fixture: fixtureOptions{Payloads: 8, PayloadMB: 48}, diskBytes: 1 << 30})
	ctx := ctxFor(t, 5*time.Minute)
	args := w.args("--flake", w.fix.Flake, "--disko-layout", w.fix.Layout, "--disk", "main", w.loop, "--phases", "disko,install")
	var once sync.Once
	cut := false
	res := w.run(ctx, nil, func(e install.Event) {
		if e.Event == "progress" && e.Phase == "install" {
			if done, _ := e.Data["paths_done"].(float64); done >= 1 {
				once.Do(func() { w.tt.Stop(); cut = true })
			}
		}
	}, args...)
	if !cut || res.code != 1 {
		t.Fatalf("want a run cut during the copy, got cut=%v:\n%s", cut, res)
	}
	if !strings.Contains(res.stderr, "run the same command again to resume") {
		t.Errorf("the failure does not say how to resume:\n%s", res.stderr)
	}
	// The harness's "dropped connection" kills the target's mount namespace
	// with its sshd, so the filesystems are unmounted, as after a restart of
	// the installer; its swap stays on in the kernel under a path no
	// namespace has any more (/loopNp1), which a restarted machine would not
	// have either: turn it off too.
	exec.Command("swapoff", w.loop+"p1").Run()
	w.tt.Restart()

	res = w.run(ctx, nil, nil, args...)
	if res.code != 0 {
		t.Fatalf("resumed run failed:\n%s\n%s", res, w.tt.Logs())
	}
	t.Logf("resumed run:\n%s", res.stderr)
	if !res.has(install.Event{Event: "skipped", Phase: "disko", Message: "done in a previous run"}) {
		t.Errorf("the disko phase was not skipped:\n%s", res.stdout)
	}
	if res.has(install.Event{Event: "step", Phase: "disko", Step: "run the disk script"}) {
		t.Errorf("the disk script ran again")
	}
	if !res.has(install.Event{Event: "step", Phase: "install", Step: "mount the filesystems", Status: "ok"}) {
		t.Errorf("the filesystems were not mounted again:\n%s", res.stdout)
	}
	copyEv := res.find(install.Event{Event: "step", Phase: "install", Step: "copy the system closure"})
	if copyEv == nil || copyEv.Data["present"].(float64) < 1 {
		t.Errorf("the resumed copy did not reuse the paths already sent: %+v", copyEv)
	}
	toplevel := w.fix.build(t, "toplevel")[0]
	w.sh(fmt.Sprintf("nix-store --store 'local?root=%s' --verify-path $(nix-store -qR %s)", w.mnt, toplevel))
}

// TestBuiltDiskScripts installs with the disk script built from the flake
// (system.build.diskoScript, as nixos-anywhere does), then with prebuilt
// --store-paths, then builds on the target.
func TestBuiltDiskScripts(t *testing.T) {
	for _, mode := range []string{"flake", "format", "store-paths", "build-on-remote", "from"} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t, worldOptions{fixture: fixtureOptions{Salt: mode}})
			ctx := ctxFor(t, 5*time.Minute)
			var args []string
			switch mode {
			case "flake":
				args = w.args("--flake", w.fix.Flake, "--phases", "disko,install")
			case "format":
				// formatScript only formats: the mount script is built and run after it.
				args = w.args("--flake", w.fix.Flake, "--phases", "disko,install", "--disko-mode", "format")
			case "store-paths":
				// A prebuilt script names no disks anywhere can check: the
				// test checks the one the fixture compiled it for instead.
				if err := testtarget.RefuseUnlessOwnLoop(w.loop); err != nil {
					t.Fatal(err)
				}
				w.checkDisk = nil
				p := w.fix.build(t, "diskoScript", "toplevel")
				args = w.args("--store-paths", p[0], p[1], "--phases", "disko,install")
			case "build-on-remote":
				args = w.args("--flake", w.fix.Flake, "--phases", "disko,install", "--build-on", "remote")
			case "from":
				// The closure comes from another store (a local chroot store
				// standing in for a binary cache), not the local one.
				toplevel := w.fix.build(t, "toplevel")[0]
				from := "local?root=" + filepath.Join(t.TempDir(), "from")
				cmd := exec.Command("nix", "copy", "--no-check-sigs", "--to", from, toplevel)
				cmd.Env = append(os.Environ(), "NIX_CONFIG="+nixConfig)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("nix copy: %v: %s", err, out)
				}
				args = w.args("--flake", w.fix.Flake, "--disko-layout", w.fix.Layout, "--disk", "main", w.loop, "--phases", "disko,install", "--from", from)
			}
			res := w.run(ctx, nil, nil, args...)
			if res.code != 0 {
				t.Fatalf("install failed:\n%s\n%s", res, w.tt.Logs())
			}
			t.Logf("output:\n%s", res.stderr)
			if got := w.sh("findmnt -n -o SOURCE " + w.mnt); got != w.loop+"p2" {
				t.Errorf("findmnt %s = %q", w.mnt, got)
			}
			if got := w.sh("cat " + w.mnt + "/var/lib/anywhere-test/ran"); !strings.Contains(got, "switch-to-configuration boot") {
				t.Errorf("activation record = %q", got)
			}
			if mode == "format" && !res.has(install.Event{Event: "step", Phase: "disko", Step: "mount the filesystems", Status: "ok"}) {
				t.Errorf("the mount script did not run after the format script:\n%s", res.stdout)
			}
			if mode == "build-on-remote" && !res.has(install.Event{Event: "step", Phase: "install", Step: "build on the target", Status: "ok"}) {
				t.Errorf("the system was not built on the target:\n%s", res.stdout)
			}
		})
	}
}

// TestOnAnInstaller makes the target look like a NixOS installer (its
// os-release, in its private /etc) with nixos-install and
// nixos-generate-config stand-ins that record their arguments: the kexec
// phase is skipped, the hardware report is written locally, and
// nixos-install is called as nixos-anywhere calls it. The flake needs the
// report to evaluate its system, so the order is checked too: before the
// target runs the installer (here: the kexec phase refuses this machine's
// kernel) neither the report nor the system is made, a dry run says when
// they will be, and the system installed is the one built from the report.
func TestOnAnInstaller(t *testing.T) {
	w := newWorld(t, worldOptions{fixture: fixtureOptions{NoHardwareConfig: true}})
	ctx := ctxFor(t, 3*time.Minute)
	bin := filepath.Join(w.tt.Dir, "standin-bin")
	record := filepath.Join(w.tt.Dir, "tools.log")
	for name, body := range map[string]string{
		"nixos-install":         `echo "nixos-install $*" >> ` + record,
		"nixos-generate-config": `echo "nixos-generate-config $*" >> ` + record + `; echo '{ boot.initrd.availableKernelModules = [ "virtio_pci" ]; }'`,
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hw := filepath.Join(w.fix.Dir, "hardware-configuration.nix")
	args := w.args("--flake", w.fix.Flake, "--disko-layout", w.fix.Layout, "--disk", "main", w.loop,
		"--phases", "kexec,disko,install", "--generate-hardware-config", "nixos-generate-config", hw)

	// The old system: the kexec phase comes first and refuses; nothing ran before it.
	res := w.run(ctx, nil, nil, args...)
	if res.code == 0 || !strings.Contains(res.stderr, "refusing to kexec") {
		t.Fatalf("want the kexec refusal, got:\n%s", res)
	}
	for _, phase := range []string{"hardware", "build"} {
		if res.has(install.Event{Event: "step", Phase: phase}) {
			t.Errorf("a %s step ran before the kexec phase:\n%s", phase, res.stdout)
		}
	}
	if b, err := os.ReadFile(record); err == nil {
		t.Errorf("tools ran on the old system: %s", b)
	}
	if _, err := os.Stat(hw); err == nil {
		t.Errorf("%s was written before the kexec phase", hw)
	}

	w.sh("rm -f /etc/os-release; printf 'NAME=NixOS\nID=nixos\nVARIANT_ID=installer\nPRETTY_NAME=\"NixOS installer\"\n' > /etc/os-release")

	// A dry run makes no report, so it cannot build the system: it says so.
	res = w.run(ctx, nil, nil, append([]string{"--dry-run"}, args...)...)
	plan := res.find(install.Event{Event: "plan"})
	if res.code != 0 || plan == nil {
		t.Fatalf("dry run: no plan:\n%s", res)
	}
	if got, _ := plan.Data["hardwareConfig"].(string); !strings.Contains(got, "nixos-generate-config on the target once the kexec phase is over") {
		t.Errorf("plan hardwareConfig = %q", got)
	}
	if disks, _ := plan.Data["disks"].([]any); plan.Data["system"] != nil || len(disks) != 1 {
		t.Errorf("plan system = %v, disks = %v; want no system yet, the layout's disk", plan.Data["system"], plan.Data["disks"])
	}
	if _, err := os.Stat(record); err == nil {
		t.Errorf("a dry run ran tools on the target: %s", mustRead(t, record))
	}

	res = w.run(ctx, nil, nil, args...)
	if res.code != 0 {
		t.Fatalf("install on an installer failed:\n%s", res)
	}
	order := []install.Event{
		{Event: "skipped", Phase: "kexec", Message: "already runs a NixOS installer"},
		{Event: "step", Phase: "hardware", Step: "generate the hardware configuration with nixos-generate-config", Status: "ok"},
		{Event: "step", Phase: "build", Step: "build", Status: "ok"},
		{Event: "phase", Phase: "disko"},
	}
	last := -1
	for _, want := range order {
		i := res.index(want)
		if i <= last {
			t.Errorf("event %+v at %d, want it after %d:\n%s", want, i, last, res.stdout)
		}
		last = i
	}
	if b, err := os.ReadFile(hw); err != nil || !strings.Contains(string(b), "virtio_pci") {
		t.Errorf("hardware configuration %s: %q, %v", hw, b, err)
	}
	toplevel := w.fix.build(t, "toplevel")[0]
	if got := w.sh("cat " + w.mnt + toplevel + "/hardware-configuration.nix"); !strings.Contains(got, "virtio_pci") {
		t.Errorf("the installed system carries the hardware configuration %q", got)
	}
	want := "nixos-generate-config --show-hardware-config --no-filesystems\n" +
		"nixos-install --root " + w.mnt + " --no-root-passwd --no-channel-copy --system " + toplevel +
		" --option substituters  --option build-users-group  --option sandbox false"
	if got := strings.TrimSpace(string(mustRead(t, record))); got != want {
		t.Errorf("tools called:\n%s\nwant:\n%s", got, want)
	}

	// Resuming: the same report gives the same system, so the finished
	// phases are skipped.
	res = w.run(ctx, nil, nil, args...)
	if res.code != 0 || !res.has(install.Event{Event: "skipped", Phase: "install", Message: "done in a previous run"}) {
		t.Fatalf("the same command again did not skip the finished phases:\n%s", res)
	}
	// Another report gives another system: the run starts over, but a
	// kexec recorded as done stays done (the target still runs the installer).
	os.WriteFile(filepath.Join(bin, "nixos-generate-config"), []byte("#!/bin/sh\necho '{ boot.initrd.availableKernelModules = [ \"nvme\" ]; }'\n"), 0o755)
	var st map[string]any
	if err := json.Unmarshal(mustRead(t, w.state), &st); err != nil {
		t.Fatal(err)
	}
	st["phases"].(map[string]any)["kexec"] = map[string]any{"done": true, "finished": time.Now().UTC(), "took_s": 1}
	b, _ := json.Marshal(st)
	os.WriteFile(w.state, b, 0o600)
	res = w.run(ctx, nil, nil, args...)
	if res.code != 0 || !res.has(install.Event{Event: "warning", Phase: "state", Message: "the inputs changed since the last run (system "}) ||
		res.index(install.Event{Event: "phase", Phase: "disko"}) < 0 {
		t.Fatalf("another hardware report did not start the install over:\n%s", res)
	}
	if err := json.Unmarshal(mustRead(t, w.state), &st); err != nil {
		t.Fatal(err)
	}
	if phases := st["phases"].(map[string]any); phases["kexec"] == nil || phases["install"] == nil {
		t.Errorf("state after starting over: phases %v, want kexec kept and install done", phases)
	}
}
