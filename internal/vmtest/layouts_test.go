package vmtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
	"github.com/diskoanywhere/diskoanywhere/internal/vmcycle"
)

const (
	// corpusDir holds disko's example layouts (shared/ lies beside the clone).
	corpusDir = "../../../shared/corpus/disko-examples"
	// fakeLib is internal/eval's stand-in for nixpkgs' lib, for with-lib.nix.
	fakeLib = "../eval/testdata/fakelib"
)

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
	"xfs-quota":              {768}, // xfs needs 300M
}

const defaultDiskMiB = 2048

// diskClasses are the disk sizes guests are made with (MiB): all disks of a layout's
// guest have the smallest class that holds the biggest disk the layout needs, so that
// a guest serves several layouts. More space costs little (the files are sparse and
// mkfs is lazy) except where an md RAID1 resyncs it, which is why there is a small class.
var diskClasses = []int64{256, 768, 2048}

// classOf is the guest disks for a layout that needs sizes (bytes).
func classOf(sizes []int64) []int64 {
	c := slices.Max(sizes)
	for _, mib := range diskClasses {
		if mib*testvm.MiB >= c {
			c = mib * testvm.MiB
			break
		}
	}
	out := make([]int64, len(sizes))
	for i := range out {
		out[i] = c
	}
	return out
}

// classKey names a disk class.
func classKey(class []int64) string {
	var parts []string
	for _, c := range class {
		parts = append(parts, strconv.FormatInt(c>>20, 10)+"M")
	}
	return strings.Join(parts, ",")
}

// defaultPBKDF lists the layouts formatted with cryptsetup's own key derivation
// (argon2id, tuned by a benchmark to ~2 s per unlock, which is ~5 s under TCG); the
// others get a cheap one from the cryptsetup stand-in (vmcycle.Options.FastLUKS),
// unless their extraFormatArgs choose one.
var defaultPBKDF = map[string]bool{"luks-interactive-login": true}

// layout is one layout under test.
type layout struct {
	name  string
	file  string
	cycle *vmcycle.Layout // its disks, scripts and what the cycle checks
	sizes []int64         // bytes the layout needs
	class []int64         // bytes of the guest's disks (see classOf)
	skip  string
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
		name := strings.TrimSuffix(filepath.Base(f), ".nix")
		l, err := loadLayout(ctx, f, lib, !defaultPBKDF[name])
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		out = append(out, l)
	}
	return out
}

// loadLayout evaluates and compiles one layout file; fastLUKS gives its LUKS containers
// a cheap key derivation (vmcycle.Options.FastLUKS).
func loadLayout(ctx context.Context, file, lib string, fastLUKS bool) (*layout, error) {
	l := &layout{name: strings.TrimSuffix(filepath.Base(file), ".nix"), file: file}
	raw, err := (&eval.Evaluator{}).Devices(ctx, eval.Source{Path: file, Nixpkgs: lib})
	if err != nil {
		return nil, err
	}
	l.cycle, err = vmcycle.Compile(l.name, raw, vmcycle.Options{FastLUKS: fastLUKS})
	if errors.Is(err, vmcycle.ErrUnsupported) {
		l.skip = vmcycle.ErrUnsupported.Error()
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	disks := len(l.cycle.Disks)
	sizes, ok := diskMiB[l.name]
	if !ok {
		sizes = nil
		for range disks {
			sizes = append(sizes, defaultDiskMiB)
		}
	}
	if len(sizes) != disks {
		return nil, fmt.Errorf("diskMiB lists %d sizes for %d disks", len(sizes), disks)
	}
	for _, s := range sizes {
		l.sizes = append(l.sizes, s*testvm.MiB)
	}
	l.class = classOf(l.sizes)
	l.cycle.DiskSizes = l.class
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

// TestLayouts runs every layout's scripts through disko's test cycle, each in a subtest
// of its own, a few guests at a time (DISKOANYWHERE_VMTEST_PARALLEL, default 2: each
// guest is one goroutine, so go test's -parallel does not limit them), and prints each
// layout's time and a summary. A guest is reused by the next layout of the same disk
// class once the previous one left its disks blank: a boot costs ~12 s under TCG.
func TestLayouts(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs; skipped in -short mode")
	}
	layouts := loadLayouts(t)
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	img, err := testvm.Build(ctx, testvm.BuildOptions{ExtraPackages: extraPackages})
	if err != nil {
		if errors.Is(err, testvm.ErrUnavailable) {
			t.Skipf("VM test skipped: %v", err)
		}
		t.Fatal(err)
	}
	var all []*vmcycle.Layout
	for _, l := range layouts {
		if l.skip == "" {
			all = append(all, l.cycle)
		}
	}
	files, err := vmcycle.GuestFiles(img.KernelRelease, all...)
	if err != nil {
		t.Fatal(err)
	}
	var queue []*layout
	for _, l := range layouts {
		if l.skip != "" {
			t.Run(l.name, func(t *testing.T) { t.Skip(l.skip) })
		} else {
			queue = append(queue, l)
		}
	}
	// The biggest class first, so that its guests are reused the most.
	count := map[string]int{}
	for _, l := range queue {
		count[classKey(l.class)]++
	}
	slices.SortStableFunc(queue, func(a, b *layout) int {
		return count[classKey(b.class)] - count[classKey(a.class)]
	})
	var mu sync.Mutex
	next := func(key string) *layout {
		mu.Lock()
		defer mu.Unlock()
		if len(queue) == 0 {
			return nil
		}
		i := max(0, slices.IndexFunc(queue, func(l *layout) bool { return classKey(l.class) == key }))
		l := queue[i]
		queue = slices.Delete(queue, i, i+1)
		return l
	}
	par := parallelism(t)
	times := map[string]time.Duration{}
	boots := 0
	start := time.Now()
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{ctx: ctx, img: img, files: files}
			defer w.stop()
			for l := w.next(next); l != nil; l = w.next(next) {
				begin := time.Now()
				t.Run(l.name, func(t *testing.T) {
					vm := w.guest(t, l)
					defer func() {
						if t.Failed() {
							w.failed(t)
						}
					}()
					if err := vmcycle.Run(ctx, vm, l.cycle, t.Logf); err != nil {
						t.Fatal(err)
					}
					t.Logf("%s: %.1fs", l.name, time.Since(begin).Seconds())
				})
				mu.Lock()
				times[l.name] = time.Since(begin)
				mu.Unlock()
			}
			mu.Lock()
			boots += w.boots
			mu.Unlock()
		}()
	}
	wg.Wait()
	names := slices.Sorted(maps.Keys(times))
	var parts []string
	var sum time.Duration
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0fs", n, times[n].Seconds()))
		sum += times[n]
	}
	t.Logf("vmtest summary: %d layouts in %.0fs wall (%.0fs summed), %d guests at a time, %d boots: %s",
		len(names), time.Since(start).Seconds(), sum.Seconds(), par, boots, strings.Join(parts, ", "))
}

// extraPackages are what the stock guest lacks: mkfs.f2fs (f2fs-tools).
var extraPackages = []string{"f2fs-tools"}
