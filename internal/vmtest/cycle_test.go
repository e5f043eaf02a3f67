package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// cryptsetupStandIn is the test-only cryptsetup on the scripts' PATH (toolDir): luksFormat
// and luksAddKey get PBKDF2 with 1000 iterations unless the command line already chooses
// a key derivation, because argon2id, benchmarked to ~2 s per unlock on real hardware,
// costs ~5 s per unlock and ~8 s per format under TCG, and the cycle unlocks each
// container several times. Everything else goes to the real cryptsetup unchanged. The
// layouts themselves are not changed.
const cryptsetupStandIn = `#!/bin/bash
case " $* " in
*" luksFormat "* | *" luksAddKey "*)
	case " $* " in
	*" --pbkdf"* | *" --iter-time"* | *" -i "*) ;;
	*) set -- --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$@" ;;
	esac
	;;
esac
exec /usr/sbin/cryptsetup "$@"
`

// cycle is one layout's run through disko's test cycle in its guest.
type cycle struct {
	t    *testing.T
	ctx  context.Context
	vm   *testvm.VM
	l    *layout
	args []string // of the probe
}

// runLayout boots a guest for l and runs the cycle; each step is timed and followed by
// a check of the guest's state.
func runLayout(t *testing.T, images *imageSet, l *layout) {
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	img, err := images.get(ctx, l.f2fs)
	if err != nil {
		t.Fatal(err)
	}
	files, modules, err := guestFiles(l, img.KernelRelease)
	if err != nil {
		t.Fatal(err)
	}
	var disks []testvm.DiskSpec
	for _, s := range l.sizes {
		disks = append(disks, testvm.DiskSpec{Size: s})
	}
	vm := testvm.StartT(t, testvm.Options{Image: img, Disks: disks, ExtraFiles: files})
	t.Logf("boot: %.1fs", vm.BootTime.Seconds())
	c := &cycle{t: t, ctx: ctx, vm: vm, l: l, args: probeArgs(l.want)}
	c.step("setup", func() error { return c.setup(modules) })

	if l.ask {
		c.step("format without a terminal is refused", func() error {
			_, _, err := vm.RunScript(ctx, l.scripts.Format)
			if err == nil || !strings.Contains(err.Error(), "stdin is not a terminal") {
				return fmt.Errorf("format with stdin not a terminal: %v, want a refusal naming the terminal", err)
			}
			return nil
		})
	}
	c.script("format", 2, checkFormatted)
	if l.ask {
		c.step("typed passphrase opens the container", c.checkTypedPassphrase)
	}
	c.step("key files open the containers", c.checkKeyFiles)
	c.script("mount", 0, checkMounted)
	c.script("mount", 0, checkMounted) // again: nothing changes
	c.step("write files", c.writeFiles)
	c.script("unmount", 0, checkUnmounted)
	c.script("unmount", 0, checkUnmounted) // again
	c.script("mount", 1, checkMounted)
	c.step("files survived unmount", func() error { return c.checkFiles(true) })
	c.script("format", 0, checkMounted) // again, mounted: keeps everything
	c.step("files survived format", func() error { return c.checkFiles(true) })
	c.script("destroy,format,mount", 2, checkMounted, "--yes-wipe-all-disks")
	c.step("files are gone after destroy,format,mount", func() error { return c.checkFiles(false) })
	c.script("unmount", 0, checkUnmounted)
	if l.ask {
		c.step("destroy asks for consent", c.refuseDestroy)
		c.step("destroy", func() error {
			return c.onTerminal(l.scripts.Destroy, 0, 1)
		})
		c.step("blank", c.checkBlank)
	} else {
		c.script("destroy", 0, nil, "--yes-wipe-all-disks")
		c.step("blank", c.checkBlank)
	}
}

// step runs f as a named, timed step; a failure ends the test.
func (c *cycle) step(name string, f func() error) {
	c.t.Helper()
	start := time.Now()
	err := f()
	c.t.Logf("%-45s %5.1fs", name, time.Since(start).Seconds())
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
}

// script runs the script of a mode as a step, then checks the state with check (nil:
// none). A layout that asks for passphrases runs it on a terminal and must be asked
// `asks` times (once per passphrase typed, twice when formatting a container).
func (c *cycle) script(mode string, asks int, check func(*state, *expect) error, args ...string) {
	c.t.Helper()
	s, err := c.l.scripts.ByMode(mode)
	if err != nil {
		c.t.Fatal(err)
	}
	name := strings.TrimSpace(mode + " " + strings.Join(args, " "))
	c.step(name, func() error {
		if c.l.ask {
			if err := c.onTerminal(s, asks, 0, args...); err != nil {
				return err
			}
		} else if _, _, err := c.vm.RunScript(c.ctx, s, args...); err != nil {
			return err
		}
		if check == nil {
			return nil
		}
		st, err := probe(c.ctx, c.vm, c.args)
		if err != nil {
			return err
		}
		if err := check(st, c.l.want); err != nil {
			return fmt.Errorf("after %s: %w", name, err)
		}
		return nil
	})
}

// onTerminal runs script on a terminal, typing the passphrase when asked (it must be
// asked `asks` times, counting formats only when a container is really formatted) and
// consenting to destroy `yes` times.
func (c *cycle) onTerminal(script []byte, asks, yes int, args ...string) error {
	out, n, err := runOnTerminal(c.ctx, c.vm, script,
		[]prompt{{passphrasePrompt, passphrase}, {consentPrompt, "yes"}}, args...)
	if err != nil {
		return err
	}
	if strings.Contains(out, passphrase) {
		return fmt.Errorf("the passphrase was echoed:\n%s", tail(out, 20))
	}
	if n[0] != asks || n[1] != yes {
		return fmt.Errorf("asked for the passphrase %d times and for consent %d times, want %d and %d; output:\n%s", n[0], n[1], asks, yes, tail(out, 20))
	}
	return nil
}

// setup checks that the guest's disks are the blank virtio disks the layout was
// mapped to, and loads the modules the stock guest lacks.
func (c *cycle) setup(modules []string) error {
	if len(modules) > 0 {
		// A guest image that ships the module (or has it built in) needs none of ours.
		cmd := "set -e\nmodprobe -q f2fs 2>/dev/null && exit 0\n"
		for _, m := range modules {
			name := strings.ReplaceAll(strings.TrimSuffix(path.Base(m), ".ko"), "-", "_")
			cmd += fmt.Sprintf("[ -d /sys/module/%s ] || insmod %s\n", shell.Quote(name), shell.Quote(m))
		}
		if _, _, err := c.vm.Run(c.ctx, cmd); err != nil {
			return err
		}
	}
	out, _, err := c.vm.Run(c.ctx, "lsblk --nodeps --noheadings --bytes --raw -o NAME,SIZE,TYPE")
	if err != nil {
		return err
	}
	var want []string
	for i, s := range c.l.sizes {
		want = append(want, fmt.Sprintf("vd%c %d disk", 'a'+i, s))
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); !slices.Equal(got, want) {
		return fmt.Errorf("guest block devices %q, want %q (the layout's disks, in name order %q)", got, want, c.l.disks)
	}
	return c.checkBlank()
}

// checkBlank: nothing is mounted, open or on, and wipefs finds no signature on any disk.
func (c *cycle) checkBlank() error {
	st, err := probe(c.ctx, c.vm, c.args)
	if err != nil {
		return err
	}
	var problems []string
	if err := checkUnmounted(st, c.l.want); err != nil {
		problems = append(problems, err.Error())
	}
	for i := range c.l.disks {
		dev := fmt.Sprintf("/dev/vd%c", 'a'+i)
		out, _, err := c.vm.Run(c.ctx, "wipefs --no-act --noheadings "+dev+"; ls -d /sys/class/block/"+path.Base(dev)+"/"+path.Base(dev)+"* 2>/dev/null || :")
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			problems = append(problems, fmt.Sprintf("%s is not blank: %s", dev, s))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// checkKeyFiles: every key file and password file of a LUKS container opens it, and the
// container uses the key derivation the test chose (the stand-in's, or cryptsetup's own).
func (c *cycle) checkKeyFiles() error {
	for _, l := range c.l.want.luks {
		for _, kf := range append(slices.Clone(l.keyFiles), l.passwordFile) {
			if kf == "" {
				continue
			}
			if _, _, err := c.vm.Run(c.ctx, fmt.Sprintf("cryptsetup open --test-passphrase --key-file %s %s",
				shell.Quote(kf), shell.Quote(l.device))); err != nil {
				return fmt.Errorf("LUKS %s: %s does not open it: %w", l.name, kf, err)
			}
		}
		out, _, err := c.vm.Run(c.ctx, "cryptsetup luksDump "+shell.Quote(l.device))
		if err != nil {
			return err
		}
		want := "pbkdf2"
		if defaultPBKDF[c.l.name] {
			want = "argon2id"
		}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "PBKDF" && strings.TrimSpace(v) != want {
				return fmt.Errorf("LUKS %s: a key slot uses %s, want %s:\n%s", l.name, strings.TrimSpace(v), want, out)
			}
		}
	}
	return nil
}

// checkTypedPassphrase: the passphrase typed at the prompt opens the containers that
// asked for it, and another one does not.
func (c *cycle) checkTypedPassphrase() error {
	for _, l := range c.l.want.luks {
		if !l.ask {
			continue
		}
		test := func(p string) string {
			return "printf %s " + shell.Quote(p) + " | cryptsetup open --test-passphrase --key-file - " + shell.Quote(l.device)
		}
		if _, _, err := c.vm.Run(c.ctx, test(passphrase)); err != nil {
			return fmt.Errorf("LUKS %s: the typed passphrase does not open it: %w", l.name, err)
		}
		if _, _, err := c.vm.Run(c.ctx, test("not "+passphrase)); err == nil {
			return fmt.Errorf("LUKS %s: a wrong passphrase opens it", l.name)
		}
	}
	return nil
}

// writeFiles writes a file into every mounted filesystem that keeps its content.
func (c *cycle) writeFiles() error {
	cmd := "set -e\n"
	for _, m := range c.l.want.mounts {
		if m.persistent() {
			cmd += fmt.Sprintf("printf %%s %s > %s\n", shell.Quote(c.l.name+" "+m.mountpoint), shell.Quote(fileName(m)))
		}
	}
	_, _, err := c.vm.Run(c.ctx, cmd+"sync\n")
	return err
}

// checkFiles: the files writeFiles wrote are all there with their content (or, with
// want false, none of them is).
func (c *cycle) checkFiles(want bool) error {
	var problems []string
	for _, m := range c.l.want.mounts {
		if !m.persistent() {
			continue
		}
		got, err := c.vm.ReadFile(c.ctx, fileName(m))
		switch {
		case want && err != nil:
			problems = append(problems, fmt.Sprintf("%s is gone: %v", fileName(m), err))
		case want && string(got) != c.l.name+" "+m.mountpoint:
			problems = append(problems, fmt.Sprintf("%s holds %q", fileName(m), got))
		case !want && err == nil:
			problems = append(problems, fmt.Sprintf("%s is still there", fileName(m)))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// refuseDestroy: destroy without --yes-wipe-all-disks asks on the terminal, and an
// answer other than yes leaves the disks alone.
func (c *cycle) refuseDestroy() error {
	out, n, err := runOnTerminal(c.ctx, c.vm, c.l.scripts.Destroy, []prompt{{consentPrompt, "no"}})
	if err == nil || n[0] != 1 || !strings.Contains(out, "aborted; nothing was changed") {
		return fmt.Errorf("destroy answered no: %v (asked %d times), want it to abort; output:\n%s", err, n[0], tail(out, 20))
	}
	st, err := probe(c.ctx, c.vm, c.args)
	if err != nil {
		return err
	}
	for _, l := range c.l.want.luks {
		if d, ok := st.dev(l.device); !ok || st.blk[d.majmin].props["TYPE"] != "crypto_LUKS" {
			return fmt.Errorf("after an aborted destroy, LUKS %s on %s is gone", l.name, l.device)
		}
	}
	return nil
}

// guestFiles are the files put into the guest before it boots: the key files, the
// probe, the cryptsetup stand-in, and for f2fs the kernel modules the stock guest
// lacks (returned in load order).
func guestFiles(l *layout, kernelRelease string) ([]testvm.File, []string, error) {
	files := []testvm.File{
		{GuestPath: probePath, Data: []byte(probeScript), Mode: 0o755},
		{GuestPath: toolDir + "/cryptsetup", Data: []byte(cryptsetupStandIn), Mode: 0o755},
	}
	for p, content := range keyFiles {
		files = append(files, testvm.File{GuestPath: p, Data: []byte(content), Mode: 0o600})
	}
	if !l.f2fs {
		return files, nil, nil
	}
	// The guest image ships only the modules its own tests need: f2fs and what it
	// depends on come from the host's copy of the same kernel.
	out, err := exec.Command("modprobe", "--set-version", kernelRelease, "--show-depends", "f2fs").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("modprobe --show-depends f2fs for %s: %w", kernelRelease, err)
	}
	var modules []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "insmod" {
			continue
		}
		if _, err := os.Stat(f[1]); err != nil {
			return nil, nil, err
		}
		guest := "/opt/vmtest/modules/" + path.Base(f[1])
		files = append(files, testvm.File{GuestPath: guest, HostPath: f[1], Mode: 0o644})
		modules = append(modules, guest)
	}
	return files, modules, nil
}
