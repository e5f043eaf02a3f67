package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

const (
	// corpusDir holds disko's example layouts (shared/ lies beside the clone).
	corpusDir = "../../../shared/corpus/disko-examples"
	// fakeLib is internal/eval's stand-in for nixpkgs' lib, for with-lib.nix.
	fakeLib = "../eval/testdata/fakelib"
	// root is where the scripts mount the installed system.
	root = "/mnt"
	// toolDir is put in front of the scripts' PATH (codegen.Options.PathDirs, the way
	// the Nix package injects its tools); it holds the cryptsetup stand-in of fastLUKS.
	toolDir = "/opt/vmtest/bin"
)

// Key files that layouts name, created in the guest before anything runs, with the
// contents disko's own tests give them.
var keyFiles = map[string]string{
	"/tmp/secret.key":           "secretsecret",
	"/tmp/additionalSecret.key": "additionalSecret",
}

// passphrase is what the askPassword layout is told on the terminal.
const passphrase = "typed passphrase"

// diskMiB are the disk sizes of each layout, as small as its partitions allow: the
// files are sparse, but every MiB costs under TCG in mkfs, md resync and LVM mirror
// sync. Layouts not listed get defaultDiskMiB per disk.
var diskMiB = map[string][]int64{
	"boot-raid1":             {768, 768}, // 500M ESP on RAID1 + RAID1 root
	"btrfs-subvolumes":       {512},      // 127M ESP + btrfs with four 20M swap files
	"f2fs":                   {768},      // ESP ends at 500M
	"gpt-bios-compat":        {256},
	"gpt-unformatted":        {1280}, // 100M + 1G unformatted + root
	"hybrid":                 {768},  // 512M ESP
	"hybrid-tmpfs-on-root":   {768},
	"legacy-table":           {768}, // ESP ends at 500M
	"luks-ask-password":      {256},
	"luks-btrfs-raid":        {768, 256}, // 512M ESP; btrfs RAID1 over two LUKS
	"luks-btrfs-subvolumes":  {768},
	"luks-interactive-login": {768},
	"luks-lvm":               {768},
	"lvm-raid":               {768, 768}, // 500M ESP on RAID1, mirror and raid0 LVs
	"lvm-sizes-sort":         {768},
	"mdadm":                  {256, 256},
	"mdadm-raid0":            {256, 256},
	"multi-device-no-deps":   {128, 128},
	"simple-efi":             {768},
	"swap":                   {2048}, // root ends 1G before the end: 500M + root + 1G of swap
	"tmpfs":                  {768},
	"with-lib":               {256},
}

const defaultDiskMiB = 2048

// defaultPBKDF lists the layouts formatted with cryptsetup's own key derivation
// (argon2id, tuned by a benchmark to ~2 s per unlock, which is ~5 s under TCG); the
// others get a cheap one from the cryptsetup stand-in (see fastLUKS), unless their
// extraFormatArgs choose one.
var defaultPBKDF = map[string]bool{"luks-interactive-login": true}

// layout is one layout under test.
type layout struct {
	name    string
	file    string
	disks   []string // disk names, sorted: disks[i] is /dev/vd{a+i}
	d       *config.Devices
	want    *expect
	sizes   []int64 // bytes
	scripts *codegen.Scripts
	ask     bool // some LUKS container asks for its passphrase on the terminal
	f2fs    bool // needs the f2fs module and mkfs.f2fs, which the stock guest lacks
	skip    string
}

// loadLayouts evaluates every corpus layout and this package's own ones, with the
// disks mapped to the guest's virtio disks, and compiles their scripts.
func loadLayouts(t *testing.T) []*layout {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.nix"))
	if len(files) == 0 {
		t.Fatalf("no layouts in %s: the shared corpus must lie beside the clone", corpusDir)
	}
	own, _ := filepath.Glob(filepath.Join("testdata", "*.nix"))
	files = append(files, own...)
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed (Debian: nix-bin); it evaluates the layouts")
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	lib, err := filepath.Abs(fakeLib)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	var out []*layout
	for _, f := range files {
		l, err := loadLayout(ctx, f, lib)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		out = append(out, l)
	}
	return out
}

func loadLayout(ctx context.Context, file, lib string) (*layout, error) {
	l := &layout{name: strings.TrimSuffix(filepath.Base(file), ".nix"), file: file}
	raw, err := (&eval.Evaluator{}).Devices(ctx, eval.Source{Path: file, Nixpkgs: lib})
	if err != nil {
		return nil, err
	}
	plain, err := config.Load(raw, config.LoadOptions{})
	if err != nil {
		return nil, err
	}
	if len(plain.Zpool) > 0 || len(plain.BcachefsFilesystems) > 0 {
		l.skip = "ZFS and bcachefs are not in Debian's kernel; their scripts are checked by internal/codegen's golden tests"
		return l, nil
	}
	l.disks = slices.Sorted(func(yield func(string) bool) {
		for name := range plain.Disk {
			if !yield(name) {
				return
			}
		}
	})
	if len(l.disks) > 26 {
		return nil, fmt.Errorf("%d disks: more than /dev/vda../dev/vdz", len(l.disks))
	}
	devices := map[string]string{}
	for i, name := range l.disks {
		devices[name] = "/dev/vd" + string(rune('a'+i))
	}
	if l.d, err = config.Load(raw, config.LoadOptions{DiskDevices: devices}); err != nil {
		return nil, err
	}
	if l.want, err = expectOf(l.d, root); err != nil {
		return nil, err
	}
	for _, lk := range l.want.luks {
		l.ask = l.ask || lk.ask
	}
	walk(l.d, func(n config.Node) {
		if fs, ok := n.(*config.Filesystem); ok && fs.Format == "f2fs" {
			l.f2fs = true
		}
	})
	sizes, ok := diskMiB[l.name]
	if !ok {
		sizes = nil
		for range l.disks {
			sizes = append(sizes, defaultDiskMiB)
		}
	}
	if len(sizes) != len(l.disks) {
		return nil, fmt.Errorf("diskMiB lists %d sizes for %d disks", len(sizes), len(l.disks))
	}
	for _, s := range sizes {
		l.sizes = append(l.sizes, s*testvm.MiB)
	}
	opts := codegen.Options{RootMountpoint: root}
	if !defaultPBKDF[l.name] {
		opts.PathDirs = toolDir
	}
	if l.scripts, err = codegen.Generate(l.d, opts); err != nil {
		return nil, err
	}
	return l, nil
}

// parallelism is how many guests run at once: DISKOANYWHERE_VMTEST_PARALLEL, default 2.
func parallelism(t *testing.T) int {
	s := os.Getenv("DISKOANYWHERE_VMTEST_PARALLEL")
	if s == "" {
		return 2
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("DISKOANYWHERE_VMTEST_PARALLEL=%q: want a number >= 1", s)
	}
	return n
}

// TestLayouts runs every layout's scripts through disko's test cycle in a guest of its
// own, a few guests at a time, and prints each layout's time and a summary.
func TestLayouts(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM per layout; skipped in -short mode")
	}
	layouts := loadLayouts(t)
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	images := &imageSet{log: t}
	if _, err := images.get(ctx, false); err != nil {
		if errors.Is(err, testvm.ErrUnavailable) {
			t.Skipf("VM test skipped: %v", err)
		}
		t.Fatal(err)
	}
	par := parallelism(t)
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	times := map[string]time.Duration{}
	start := time.Now()
	t.Run("layout", func(t *testing.T) {
		for _, l := range layouts {
			t.Run(l.name, func(t *testing.T) {
				if l.skip != "" {
					t.Skip(l.skip)
				}
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				begin := time.Now()
				defer func() {
					d := time.Since(begin)
					t.Logf("%s: %.1fs", l.name, d.Seconds())
					mu.Lock()
					times[l.name] = d
					mu.Unlock()
				}()
				runLayout(t, images, l)
			})
		}
	})
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range times {
			if !yield(n) {
				return
			}
		}
	})
	var parts []string
	var sum time.Duration
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0fs", n, times[n].Seconds()))
		sum += times[n]
	}
	t.Logf("vmtest summary: %d layouts in %.0fs wall, %.0fs of guest time, %d at a time: %s",
		len(names), time.Since(start).Seconds(), sum.Seconds(), par, strings.Join(parts, ", "))
}

// imageSet builds the guest images once, with the packages the stock guest lacks: GNU
// cmp (diffutils; the scripts' disko_pristine runs cmp --silent --bytes, which busybox's
// cmp does not know), and for f2fs layouts mkfs.f2fs (f2fs-tools).
type imageSet struct {
	log  testing.TB
	mu   sync.Mutex
	imgs map[bool]*testvm.Image
}

func (s *imageSet) get(ctx context.Context, f2fs bool) (*testvm.Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if img := s.imgs[f2fs]; img != nil {
		return img, nil
	}
	opts := testvm.BuildOptions{ExtraPackages: []string{"diffutils"}}
	if f2fs {
		opts.ExtraPackages = append(opts.ExtraPackages, "f2fs-tools")
	}
	img, err := testvm.Build(ctx, opts)
	if err != nil {
		return nil, err
	}
	if s.imgs == nil {
		s.imgs = map[bool]*testvm.Image{}
	}
	s.imgs[f2fs] = img
	return img, nil
}
