package vmcycle

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// cycle is one layout's run through disko's test cycle in its guest.
type cycle struct {
	ctx  context.Context
	vm   *testvm.VM
	l    *Layout
	logf func(format string, args ...any)
	args []string // of the probe
}

// StepError is a step of the cycle that failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }

func (e *StepError) Unwrap() error { return e.Err }

// Run takes l through disko's test cycle in vm, whose disks must be blank and sized
// l.DiskSizes and which got GuestFiles before it booted: format, mount, mount again,
// write a file, unmount, unmount again, mount, format again (the file survives),
// destroy,format,mount, unmount and destroy (the disks are blank). Each step is timed
// (one line to logf) and followed by a check of the guest's state. The first failing
// step ends the cycle with a *StepError.
func Run(ctx context.Context, vm *testvm.VM, l *Layout, logf func(format string, args ...any)) error {
	c := &cycle{ctx: ctx, vm: vm, l: l, logf: logf, args: probeArgs(l.want)}
	return c.run()
}

func (c *cycle) run() error {
	l := c.l
	steps := []func() error{func() error { return c.step("setup", c.setup) }}
	if l.ask {
		steps = append(steps, func() error {
			return c.step("format without a terminal is refused", func() error {
				_, _, err := c.vm.RunScript(c.ctx, l.Scripts.Format)
				if err == nil || !strings.Contains(err.Error(), "stdin is not a terminal") {
					return fmt.Errorf("format with stdin not a terminal: %v, want a refusal naming the terminal", err)
				}
				return nil
			})
		})
	}
	steps = append(steps, c.script("format", 2, formatted))
	if l.ask {
		steps = append(steps, func() error { return c.step("typed passphrase opens the container", c.checkTypedPassphrase) })
	}
	steps = append(steps,
		func() error { return c.step("key files open the containers", c.checkKeyFiles) },
		c.script("mount", 0, mounted),
		c.script("mount", 0, mounted), // again: nothing changes
		func() error { return c.step("write files", c.writeFiles) },
		c.script("unmount", 0, unmounted),
		c.script("unmount", 0, unmounted), // again
		c.script("mount", 1, mounted),
		func() error { return c.step("files survived unmount", func() error { return c.checkFiles(true) }) },
		c.script("format", 0, mounted), // again, mounted: keeps everything
		func() error { return c.step("files survived format", func() error { return c.checkFiles(true) }) },
		c.script("destroy,format,mount", 2, mounted, "--yes-wipe-all-disks"),
		func() error {
			return c.step("files are gone after destroy,format,mount", func() error { return c.checkFiles(false) })
		},
		c.script("unmount", 0, unmounted),
	)
	if l.ask {
		steps = append(steps,
			func() error { return c.step("destroy asks for consent", c.refuseDestroy) },
			func() error {
				return c.step("destroy", func() error { return c.onTerminal(l.Scripts.Destroy, 0, 1) })
			})
	} else {
		steps = append(steps, c.script("destroy", 0, noCheck, "--yes-wipe-all-disks"))
	}
	steps = append(steps, func() error { return c.step("blank", c.checkBlank) })
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// step runs f as a named, timed step.
func (c *cycle) step(name string, f func() error) error {
	start := time.Now()
	err := f()
	c.logf("%-45s %5.1fs", name, time.Since(start).Seconds())
	if err != nil {
		return &StepError{Step: name, Err: err}
	}
	return nil
}

// phase is the state a script leaves the layout in, which the step then checks.
type phase int

const (
	noCheck   phase = iota
	formatted       // checkFormatted
	mounted         // checkMounted
	unmounted       // checkUnmounted
)

// script is a step that runs the script of a mode, then checks that the layout is in
// phase ph. A layout that asks for passphrases runs it on a terminal and must be asked
// `asks` times (once per passphrase typed, twice when formatting a container).
func (c *cycle) script(mode string, asks int, ph phase, args ...string) func() error {
	return func() error {
		s, err := c.l.Scripts.ByMode(mode)
		if err != nil {
			return err
		}
		name := strings.TrimSpace(mode + " " + strings.Join(args, " "))
		return c.step(name, func() error {
			if c.l.ask {
				if err := c.onTerminal(s, asks, 0, args...); err != nil {
					return err
				}
			} else if _, _, err := c.vm.RunScript(c.ctx, s, args...); err != nil {
				return err
			}
			if ph == noCheck {
				return nil
			}
			st, err := c.probe(ph)
			if err != nil {
				return err
			}
			check := map[phase]func(*state, *expect) error{formatted: checkFormatted, mounted: checkMounted, unmounted: checkUnmounted}[ph]
			if err := check(st, c.l.want); err != nil {
				return fmt.Errorf("after %s: %w", name, err)
			}
			return nil
		})
	}
}

// onTerminal runs script on a terminal, typing the passphrase when asked (it must be
// asked `asks` times, counting formats only when a container is really formatted) and
// consenting to destroy `yes` times.
func (c *cycle) onTerminal(script []byte, asks, yes int, args ...string) error {
	out, n, err := runOnTerminal(c.ctx, c.vm, script,
		[]prompt{{passphrasePrompt, Passphrase}, {consentPrompt, "yes"}}, args...)
	if err != nil {
		return err
	}
	if strings.Contains(out, Passphrase) {
		return fmt.Errorf("the passphrase was echoed:\n%s", Tail(out, 20))
	}
	if n[0] != asks || n[1] != yes {
		return fmt.Errorf("asked for the passphrase %d times and for consent %d times, want %d and %d; output:\n%s", n[0], n[1], asks, yes, Tail(out, 20))
	}
	return nil
}

// setup checks that the guest's disks are blank virtio disks, one for each of the
// layout's disks, and loads the f2fs module when the layout needs it.
func (c *cycle) setup() error {
	if c.l.f2fs {
		// From the image when it ships the module, else the copies GuestFiles added.
		cmd := `modprobe -q f2fs 2>/dev/null && exit 0
while read -r m; do
	n=${m##*/}; n=${n#*-}; n=${n%.ko}; n=${n//-/_}
	[ -d "/sys/module/$n" ] || insmod "$m"
done <` + f2fsModules + "/order\nmodprobe -q f2fs || grep -qw f2fs /proc/filesystems"
		if _, _, err := c.vm.Run(c.ctx, cmd); err != nil {
			return err
		}
	}
	out, _, err := c.vm.Run(c.ctx, "lsblk --nodeps --noheadings --bytes --raw -o NAME,SIZE,TYPE")
	if err != nil {
		return err
	}
	var want []string
	for i, s := range c.l.DiskSizes {
		want = append(want, fmt.Sprintf("vd%c %d disk", 'a'+i, s))
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); !slices.Equal(got, want) {
		return fmt.Errorf("guest block devices %q, want %q (the layout's disks, in name order %q)", got, want, c.l.Disks)
	}
	return c.checkBlank()
}

// probe reads the guest's state for a check of phase ph.
func (c *cycle) probe(ph phase) (*state, error) {
	args := c.args
	if ph == unmounted {
		// Active LVs show as device-mapper devices: lvs (~0.7 s) is not needed.
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "lvs" })
	}
	return probe(c.ctx, c.vm, args)
}

// checkBlank: nothing is mounted, open or on, and wipefs finds no signature on any disk.
func (c *cycle) checkBlank() error {
	st, err := c.probe(unmounted)
	if err != nil {
		return err
	}
	var problems []string
	if err := checkUnmounted(st, c.l.want); err != nil {
		problems = append(problems, err.Error())
	}
	for i := range c.l.Disks {
		dev := VirtioDisk(i)
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
		if !c.l.FastLUKS {
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
		if _, _, err := c.vm.Run(c.ctx, test(Passphrase)); err != nil {
			return fmt.Errorf("LUKS %s: the typed passphrase does not open it: %w", l.name, err)
		}
		if _, _, err := c.vm.Run(c.ctx, test("not "+Passphrase)); err == nil {
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
			cmd += fmt.Sprintf("printf %%s %s > %s\n", shell.Quote(c.l.Name+" "+m.mountpoint), shell.Quote(fileName(m)))
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
		case want && string(got) != c.l.Name+" "+m.mountpoint:
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
	out, n, err := runOnTerminal(c.ctx, c.vm, c.l.Scripts.Destroy, []prompt{{consentPrompt, "no"}})
	if err == nil || n[0] != 1 || !strings.Contains(out, "aborted; nothing was changed") {
		return fmt.Errorf("destroy answered no: %v (asked %d times), want it to abort; output:\n%s", err, n[0], Tail(out, 20))
	}
	st, err := c.probe(unmounted)
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
