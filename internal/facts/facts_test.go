package facts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestParseGolden replays recorded script outputs: a Debian target with a
// sudo user (recorded from testtarget), a NixOS kexec installer, and an old
// lsblk (string sizes, "mountpoint") on a doas-only ARM board.
func TestParseGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/*.out")
	if len(ins) == 0 {
		t.Fatal("no testdata/*.out")
	}
	for _, in := range ins {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f, err := facts.Parse(out)
			if err != nil {
				t.Fatalf("Parse(%s) = %v", in, err)
			}
			got, _ := json.MarshalIndent(struct {
				*facts.Facts
				IPv6Only bool
			}{f, f.IPv6Only()}, "", "  ")
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".out") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Parse(%s) differs from %s; run go test -update and review the diff\ngot:\n%s", in, golden, got)
			}
		})
	}
}

func TestParseKeyFacts(t *testing.T) {
	for _, tc := range []struct {
		file      string
		installer bool
		method    remote.Method
		arch      string
	}{
		{"debian-sudo-user.out", false, remote.MethodSudo, "x86_64"},
		{"nixos-kexec-installer.out", true, remote.MethodRoot, "x86_64"},
		{"old-lsblk-doas.out", false, remote.MethodDoas, "aarch64"},
	} {
		out, _ := os.ReadFile(filepath.Join("testdata", tc.file))
		f, err := facts.Parse(out)
		if err != nil {
			t.Fatalf("Parse(%s) = %v", tc.file, err)
		}
		if f.IsInstaller != tc.installer || f.Privilege.Method != tc.method || f.Arch != tc.arch {
			t.Errorf("Parse(%s) = installer %v, method %s, arch %s; want %v %s %s",
				tc.file, f.IsInstaller, f.Privilege.Method, f.Arch, tc.installer, tc.method, tc.arch)
		}
	}
}

func TestParseRejectsNonShellOutput(t *testing.T) {
	for _, out := range []string{"", "fish: Unknown command: kv\n", "kernel=Linux\nbegin lsblk\n{not json\nend lsblk\npriv.uid=0\n"} {
		if _, err := facts.Parse([]byte(out)); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", out)
		}
	}
}

// TestScriptIsPOSIX runs the script under dash (Debian's /bin/sh) and,
// when installed, BusyBox sh, to catch bashisms.
func TestScriptIsPOSIX(t *testing.T) {
	for _, sh := range [][]string{{"dash"}, {"busybox", "sh"}} {
		if _, err := exec.LookPath(sh[0]); err != nil {
			t.Logf("%s not installed, skipped", sh[0])
			continue
		}
		cmd := exec.Command(sh[0], append(sh[1:], "-n", "-c", facts.Script())...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%v -n: %v: %s", sh, err, out)
		}
	}
}

func dialTarget(t *testing.T, tt *testtarget.Target) *remote.Client {
	t.Helper()
	tg, err := remote.ParseTarget(tt.Destination())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := remote.Dial(ctx, tg, tt.ClientOptions(t.TempDir()))
	if err != nil {
		t.Fatalf("Dial = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGatherFromRealTarget(t *testing.T) {
	loop := testtarget.LoopDevice(t, 96<<20)
	localArch, _ := exec.Command("uname", "-m").Output()
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	_, kexecErr := os.Stat("/sys/kernel/kexec_loaded")
	for _, tc := range []struct {
		name   string
		opts   testtarget.Options
		method remote.Method
		passwd bool
	}{
		{"root", testtarget.Options{}, remote.MethodRoot, false},
		{"sudo nopasswd", testtarget.Options{User: "alice"}, remote.MethodSudo, false},
		{"sudo with password", testtarget.Options{User: "bob", Password: "pw"}, remote.MethodSudo, true},
		{"doas nopass", testtarget.Options{User: "olga", Doas: true}, remote.MethodDoas, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := testtarget.Start(t, tc.opts)
			c := dialTarget(t, tt)
			before := c.Sessions()
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f, err := facts.Gather(ctx, c)
			if err != nil {
				t.Fatalf("Gather = %v", err)
			}
			t.Logf("facts gathered in %s", time.Since(start).Round(time.Millisecond))
			if n := c.Sessions() - before; n != 1 {
				t.Errorf("Gather used %d sessions, want one round trip", n)
			}
			if f.Kernel != "Linux" || f.Arch != strings.TrimSpace(string(localArch)) || f.BootID != strings.TrimSpace(string(bootID)) {
				t.Errorf("kernel %q arch %q boot id %q; want Linux, %s, this machine's boot id", f.Kernel, f.Arch, f.BootID, localArch)
			}
			if f.OS.ID == "" || f.IsInstaller || f.IsNixOS {
				t.Errorf("OS = %+v, installer %v; want this machine's distribution, not an installer", f.OS, f.IsInstaller)
			}
			if f.MemTotal < 64<<20 || f.MemAvailable == 0 || f.MemAvailable > f.MemTotal {
				t.Errorf("memory total %d available %d: implausible", f.MemTotal, f.MemAvailable)
			}
			if f.Privilege.Method != tc.method || f.Privilege.NeedsPassword != tc.passwd || f.Privilege.User != tt.User {
				t.Errorf("Privilege = %+v, want %s for %s with NeedsPassword=%v", f.Privilege, tc.method, tt.User, tc.passwd)
			}
			if f.Tools["tar"] == "" || f.Tools["lsblk"] == "" || f.Tools["sh"] != "" {
				t.Errorf("Tools = %q; want tar and lsblk found, and no sh (not in the tool list)", f.Tools)
			}
			if f.Kexec.Supported != (kexecErr == nil) {
				t.Errorf("Kexec.Supported = %v, but /sys/kernel/kexec_loaded exists here: %v", f.Kexec.Supported, kexecErr == nil)
			}
			if _, err := os.Stat("/.dockerenv"); err == nil && f.Container == "" {
				t.Errorf("Container = %q, but /.dockerenv exists", f.Container)
			}
			var found *facts.Disk
			var walk func([]facts.Disk)
			walk = func(ds []facts.Disk) {
				for i := range ds {
					if ds[i].Path == loop {
						found = &ds[i]
					}
					walk(ds[i].Children)
				}
			}
			walk(f.Disks)
			if found == nil || found.Size != 96<<20 || found.Type != "loop" {
				names := []string{}
				for _, d := range f.Disks {
					names = append(names, d.Path)
				}
				t.Errorf("loop device %s in Disks = %+v; want type loop, 96 MiB (disks: %v)", loop, found, names)
			}
			// The privilege answer can be handed to the client: no extra probe.
			c.SetPrivilege(f.Privilege)
			if !tc.passwd {
				n := c.Sessions()
				r, err := c.Root(ctx)
				if err != nil || c.Sessions() != n {
					t.Errorf("Root() after SetPrivilege = %v, %d extra sessions; want none", err, c.Sessions()-n)
				} else if out, err := r.Output(ctx, "id -u"); err != nil || strings.TrimSpace(string(out)) != "0" {
					t.Errorf("root id -u = %q, %v", out, err)
				}
			}
		})
	}
}

func TestToolsHaveNoDuplicates(t *testing.T) {
	seen := map[string]bool{}
	for _, tool := range facts.Tools() {
		if seen[tool] {
			t.Errorf("tool %s listed twice", tool)
		}
		seen[tool] = true
	}
}
