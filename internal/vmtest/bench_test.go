package vmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
	"github.com/diskoanywhere/diskoanywhere/internal/vmcycle"
)

// benchLayouts are the layouts BenchmarkFormatSideBySide formats, from simple to
// stacked: each has the bare commands it needs in testdata/bench/LAYOUT.sh. cheapKDF
// runs all three scripts with vmcycle's cryptsetup stand-in (PBKDF2 at 1000
// iterations); without it, LUKS derives its keys with cryptsetup's default (argon2id,
// benchmarked to ~2 s per derivation), which is what a user gets.
var benchLayouts = []struct {
	name, layout string
	cheapKDF     bool
}{
	{"simple-efi", "simple-efi", true},
	{"btrfs-subvolumes", "btrfs-subvolumes", true},
	{"mdadm", "mdadm", true},
	{"lvm-raid", "lvm-raid", true},
	{"luks-lvm", "luks-lvm", false},
	{"luks-lvm-cheap-kdf", "luks-lvm", true},
}

// BenchmarkFormatSideBySide formats layouts of disko's corpus on blank disks of one guest
// three ways, in turn in every round so that the machine's load affects them alike: the
// bare commands the layout needs (partition tables, mkfs, cryptsetup, mdadm, LVM, a
// final udevadm settle so that the /dev/disk links exist, as the format script
// guarantees), our format script, and disko's own (its _create, evaluated from a disko
// checkout with nixpkgs' lib). Each is timed inside the guest, our destroy script
// blanks the disks between them, and the medians are reported with the ratios
// ours/bare (target: at most 1.3) and ours/disko (target: below 1).
//
// disko's script needs DISKOANYWHERE_DISKO_SRC (a disko checkout) and NIXPKGS_LIB (the
// lib directory of nixpkgs); without them the disko column is left out. With
// DISKOANYWHERE_BENCH_TRACE set to a directory, every run is traced (bash -x, each line
// stamped with $EPOCHREALTIME) and its trace kept there as LAYOUT-SCRIPT-ROUND.log, to
// find where the time goes (tracing slows the scripts: the figures are then not the
// ones to report). Run it with
//
//	go test ./internal/vmtest -run '^$' -bench FormatSideBySide -benchtime 3x -timeout 60m
func BenchmarkFormatSideBySide(b *testing.B) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		b.Skip("nix-instantiate is not installed (Debian: nix-bin); it evaluates the layouts")
	}
	b.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	diskoSrc, nixpkgsLib := os.Getenv("DISKOANYWHERE_DISKO_SRC"), os.Getenv("NIXPKGS_LIB")
	if diskoSrc == "" || nixpkgsLib == "" {
		b.Log("DISKOANYWHERE_DISKO_SRC or NIXPKGS_LIB is not set: disko's own script is not measured")
	}
	traceDir := os.Getenv("DISKOANYWHERE_BENCH_TRACE")
	ctx, cancel := testvm.ContextT(b)
	defer cancel()
	img, err := testvm.Build(ctx, testvm.BuildOptions{ExtraPackages: extraPackages})
	if err != nil {
		b.Fatal(err)
	}
	lib, err := filepath.Abs(fakeLib)
	if err != nil {
		b.Fatal(err)
	}
	for _, bl := range benchLayouts {
		b.Run(bl.name, func(b *testing.B) {
			file := filepath.Join(corpusDir, bl.layout+".nix")
			l, err := loadLayout(ctx, file, lib, bl.cheapKDF)
			if err != nil {
				b.Fatal(err)
			}
			bare, err := os.ReadFile(filepath.Join("testdata", "bench", bl.layout+".sh"))
			if err != nil {
				b.Fatal(err)
			}
			var disko []byte
			if diskoSrc != "" && nixpkgsLib != "" {
				if disko, err = diskoCreate(ctx, diskoSrc, nixpkgsLib, file, l.cycle.Disks); err != nil {
					b.Fatal(err)
				}
			}
			files, err := vmcycle.GuestFiles(img.KernelRelease, l.cycle)
			if err != nil {
				b.Fatal(err)
			}
			var disks []testvm.DiskSpec
			for _, s := range l.class {
				disks = append(disks, testvm.DiskSpec{Size: s})
			}
			vm := testvm.StartT(b, testvm.Options{Image: img, Disks: disks, ExtraFiles: files})
			b.Logf("guest: %s, disks %s", vm.Mode(), classKey(l.class))
			path := ""
			if bl.cheapKDF {
				path = vmcycle.ToolDir + ":"
			}
			scripts := []struct {
				name   string
				script []byte
			}{
				{"bare", append([]byte("set -euo pipefail\n"), bare...)},
				{"ours", l.cycle.Scripts.Format},
				{"disko", disko},
			}
			dir := "/root/bench"
			for _, s := range scripts {
				if s.script != nil {
					if err := vm.WriteFile(ctx, dir+"/"+s.name+".sh", s.script, 0o755); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := vm.WriteFile(ctx, dir+"/destroy.sh", l.cycle.Scripts.Destroy, 0o755); err != nil {
				b.Fatal(err)
			}
			times := map[string][]time.Duration{}
			for b.Loop() {
				for _, s := range scripts {
					if s.script == nil {
						continue
					}
					if _, _, err := vm.Run(ctx, "bash "+dir+"/destroy.sh --yes-wipe-all-disks >/dev/null 2>&1"); err != nil {
						b.Fatalf("destroy before %s: %v", s.name, err)
					}
					d, err := timeInGuest(ctx, vm, path, dir+"/"+s.name+".sh", traceDir != "")
					if err != nil {
						b.Fatalf("%s: %v", s.name, err)
					}
					times[s.name] = append(times[s.name], d)
					if traceDir != "" {
						log, err := vm.ReadFile(ctx, dir+"/last.log")
						if err != nil {
							b.Fatal(err)
						}
						name := fmt.Sprintf("%s-%s-%d.log", bl.name, s.name, len(times[s.name]))
						if err := os.WriteFile(filepath.Join(traceDir, name), log, 0o644); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			if _, _, err := vm.Run(ctx, "bash "+dir+"/destroy.sh --yes-wipe-all-disks >/dev/null 2>&1"); err != nil {
				b.Fatalf("destroy: %v", err)
			}
			report(b, times)
		})
	}
}

// timeInGuest runs script in the guest with dirs in front of PATH (traced with
// timestamps when trace is set) and returns how long it took there (the SSH round trip
// is not counted). Its output is left in /root/bench/last.log.
func timeInGuest(ctx context.Context, vm *testvm.VM, dirs, script string, trace bool) (time.Duration, error) {
	bash := "bash"
	if trace {
		// bash running as root does not take PS4 from the environment.
		bash = `bash -c 'PS4="+ \$EPOCHREALTIME "; set -x; source "$0"'`
	}
	cmd := fmt.Sprintf(`start=$EPOCHREALTIME
PATH=%s$PATH %s %s >/root/bench/last.log 2>&1 || { tail -n 30 /root/bench/last.log >&2; exit 1; }
echo "$start $EPOCHREALTIME"`, dirs, bash, script)
	out, _, err := vm.Run(ctx, cmd) // a failure carries the end of the script's output
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return 0, fmt.Errorf("timing %q: want two times", out)
	}
	start, err1 := strconv.ParseFloat(f[0], 64)
	end, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("timing %q: want two times", out)
	}
	return time.Duration((end - start) * float64(time.Second)), nil
}

// diskoCreate is disko's format script for file with its disks (in name order) on the
// guest's virtio disks.
func diskoCreate(ctx context.Context, diskoSrc, nixpkgsLib, file string, disks []string) ([]byte, error) {
	var devices []string
	for i, d := range disks {
		devices = append(devices, strconv.Quote(d)+" = "+strconv.Quote(vmcycle.VirtioDisk(i))+";")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nix-instantiate", "--eval", "--strict", "--json", filepath.Join("testdata", "bench", "disko-create.nix"),
		"--arg", "nixpkgsLib", nixpkgsLib, "--arg", "disko", diskoSrc, "--arg", "file", abs,
		"--arg", "devices", "{ "+strings.Join(devices, " ")+" }")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("disko's script for %s: %w\n%s", file, err, ee.Stderr)
		}
		return nil, err
	}
	var script string
	if err := json.Unmarshal(out, &script); err != nil {
		return nil, err
	}
	return []byte("#!/usr/bin/env bash\n" + script), nil
}

// report prints the medians and their ratios.
func report(b *testing.B, times map[string][]time.Duration) {
	med := map[string]float64{}
	for name, ts := range times {
		ts = slices.Clone(ts)
		slices.Sort(ts)
		med[name] = ts[len(ts)/2].Seconds()
		b.ReportMetric(med[name], name+"-s")
	}
	b.ReportMetric(med["ours"]/med["bare"], "ours/bare")
	if d, ok := med["disko"]; ok {
		b.ReportMetric(med["ours"]/d, "ours/disko")
	}
}
