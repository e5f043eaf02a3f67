package codegen

import (
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

	"github.com/diskoanywhere/diskoanywhere/internal/diskotest"
)

// benchSize is a disk size with the sizes of its ESP and swap partitions (root takes the
// rest), for the benchmarks' three-partition layout.
type benchSize struct {
	name          string
	disk          int64
	esp, swap     string // layout sizes
	espMB, swapMB int64
}

var benchSizes = []benchSize{
	{"1GiB", 1 << 30, "100M", "100M", 100, 100},
	// disko's examples: a 500M ESP; swap of 1G.
	{"4GiB", 4 << 30, "500M", "1G", 500, 1024},
}

// threePartitions is the benchmarks' layout for one disk: an ESP, swap and an ext4 root.
func threePartitions(name, dev string, sz benchSize) string {
	return fmt.Sprintf(`%q: {"device": %q, "content": {"type": "gpt", "partitions": {
		"ESP": {"size": %q, "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot-%s"}},
		"swap": {"size": %q, "content": {"type": "swap"}},
		"root": {"size": "100%%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/%s"}}}}}`, name, dev, sz.esp, name, sz.swap, name)
}

// wipeDisk makes a disk blank again between rounds (not timed), as the destroy script
// does: signatures of the partitions and the disk wiped, its first and last MiB zeroed.
func wipeDisk(b *testing.B, dev string) {
	b.Helper()
	parts, _ := filepath.Glob("/sys/class/block/" + filepath.Base(dev) + "/" + filepath.Base(dev) + "p*")
	for _, p := range parts {
		exec.Command("wipefs", "--all", "--quiet", "/dev/"+filepath.Base(p)).Run()
	}
	if out, err := exec.Command("wipefs", "--all", "--quiet", dev).CombinedOutput(); err != nil {
		b.Fatalf("wipefs %s: %v\n%s", dev, err, out)
	}
	// What the destroy script leaves: the first and the last MiB zeroed too.
	size, err := os.ReadFile("/sys/class/block/" + filepath.Base(dev) + "/size")
	if err != nil {
		b.Fatal(err)
	}
	sectors, _ := strconv.Atoi(strings.TrimSpace(string(size)))
	for _, seek := range []int{0, sectors - 2048} {
		if out, err := exec.Command("dd", "if=/dev/zero", "of="+dev, "bs=512", "count=2048", fmt.Sprintf("seek=%d", seek), "conv=notrunc,fsync", "status=none").CombinedOutput(); err != nil {
			b.Fatalf("dd %s: %v\n%s", dev, err, out)
		}
	}
	exec.Command("partx", "-d", dev).Run()
	exec.Command("udevadm", "settle", "--timeout=10").Run()
}

// bare runs the commands a format of threePartitions needs, with nothing around them: one
// partition-table write, telling the kernel, and the three mkfs. A partition is held open
// from the start, as the script does (see disko_pin): otherwise udev, seeing sfdisk close
// the disk, re-reads the table, which on this machine's kernel (no GPT parser) drops the
// partitions partx just added, and a mkfs fails now and then. (A lock on the disk would
// also do, but it holds back udev's own work until after the timed commands.)
func bare(b *testing.B, dev string, sz benchSize) {
	b.Helper()
	if err := bareCommands(dev, sz); err != nil {
		b.Fatal(err)
	}
}

// bareCommands runs bare's commands on dev and returns what failed, with their output.
func bareCommands(dev string, sz benchSize) error {
	espStart, swapStart := int64(2048), 2048+sz.espMB*2048
	rootStart := swapStart + sz.swapMB*2048
	table := fmt.Sprintf("label: gpt\nstart=%d, size=%d, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"disk-bench-ESP\"\n"+
		"start=%d, size=%d, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=\"disk-bench-swap\"\n"+
		"start=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"disk-bench-root\"\n",
		espStart, sz.espMB*2048, swapStart, sz.swapMB*2048, rootStart)
	cmd := exec.Command("bash", "-euc", `sfdisk --quiet --no-reread --no-tell-kernel "$1"
until partx -a "$1" 2>/dev/null; exec 3<"$1"p1; do :; done 2>/dev/null
mkfs.vfat "$1"p1 >/dev/null
mkswap "$1"p2 >/dev/null
mkfs.ext4 -q "$1"p3`, "bare", dev)
	cmd.Stdin = strings.NewReader(table)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bare commands on %s: %v\n%s", dev, err, out)
	}
	return nil
}

// bareParallel runs bare's commands on every disk at once, as the format script formats
// independent disks in parallel.
func bareParallel(b *testing.B, devs []string, sz benchSize) {
	b.Helper()
	errs := make([]error, len(devs))
	var wg sync.WaitGroup
	for i, dev := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = bareCommands(dev, sz)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

// formatScript writes the format script of threePartitions on devs.
func formatScript(b *testing.B, sz benchSize, devs ...string) string {
	b.Helper()
	var disks []string
	for i, dev := range devs {
		disks = append(disks, threePartitions(fmt.Sprintf("bench%d", i), dev, sz))
	}
	d := layout(b, `{"disk": {`+strings.Join(disks, ",")+`}}`, devs...)
	s, err := Generate(d, Options{})
	if err != nil {
		b.Fatal(err)
	}
	f := filepath.Join(b.TempDir(), "format.sh")
	if err := os.WriteFile(f, s.Format, 0o700); err != nil {
		b.Fatal(err)
	}
	return f
}

func runFormat(b *testing.B, script string) {
	b.Helper()
	if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
		b.Fatalf("format: %v\n%s", err, out)
	}
}

// median of durations (robust against the spikes of a shared machine).
func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkFormatVsBare formats a three-partition layout on a loop disk with the generated
// script and with the bare commands it needs, alternately, in the same run, and reports
// the ratio of the medians (target: at most 1.3), for a tiny disk and for disko's example
// sizes. udevd runs, as on an installer, so the script's time includes waiting for the
// /dev/disk/by-partlabel links. The disks start blank as the destroy script leaves them,
// backed by RAM so that the host's disk does not add noise.
func BenchmarkFormatVsBare(b *testing.B) {
	requireRoot(b, "mkfs.ext4", "mkfs.vfat", "mkswap", "udevadm")
	diskotest.StartUdev(b)
	for _, sz := range benchSizes {
		b.Run("disk="+sz.name, func(b *testing.B) {
			dev := newLoopIn(b, ramDir(b), sz.disk)
			diskotest.TriggerUdev(b, dev)
			script := formatScript(b, sz, dev)
			var ours, base []time.Duration
			for b.Loop() {
				wipeDisk(b, dev)
				start := time.Now()
				bare(b, dev, sz)
				base = append(base, time.Since(start))
				wipeDisk(b, dev)
				start = time.Now()
				runFormat(b, script)
				ours = append(ours, time.Since(start))
			}
			b.ReportMetric(ms(median(ours)), "script-ms")
			b.ReportMetric(ms(median(base)), "bare-ms")
			b.ReportMetric(float64(median(ours))/float64(median(base)), "ratio")
		})
	}
}

// BenchmarkFormatDisks formats the three-partition layout on 1, 2, 3 and 4 loop disks at
// once (one script per count, run in turn in every round so that the machine's load
// affects them alike) and reports the median time of each and how it grows: t(N)/t(1),
// against N for formatting the disks one after the other (independent disks are formatted
// in parallel). The loop disks are backed by RAM, as independent disks do not wait for
// each other's writes. The same rounds run the bare commands (see bare) on 1 and on 4
// disks at once: their growth, bare-growth4, is the floor the script's growth4 is held
// to, since with 2 CPUs four disks' mkfs, sfdisk and udev work cannot take the time of
// one; ours4/bare4 is what the script adds on 4 disks.
func BenchmarkFormatDisks(b *testing.B) {
	requireRoot(b, "mkfs.ext4", "mkfs.vfat", "mkswap", "udevadm")
	diskotest.StartUdev(b)
	sz := benchSizes[1]
	var devs []string
	for range 4 {
		devs = append(devs, newLoopIn(b, ramDir(b), sz.disk))
	}
	diskotest.TriggerUdev(b, devs...)
	scripts := make([]string, 4)
	for n := 1; n <= 4; n++ {
		scripts[n-1] = formatScript(b, sz, devs[:n]...)
	}
	wipe := func(devs []string) {
		for _, d := range devs {
			wipeDisk(b, d)
		}
	}
	times := make([][]time.Duration, 4)
	var bare1, bare4 []time.Duration
	for b.Loop() {
		for n := 1; n <= 4; n++ {
			wipe(devs[:n])
			start := time.Now()
			runFormat(b, scripts[n-1])
			times[n-1] = append(times[n-1], time.Since(start))
		}
		wipe(devs[:1])
		start := time.Now()
		bareParallel(b, devs[:1], sz)
		bare1 = append(bare1, time.Since(start))
		wipe(devs)
		start = time.Now()
		bareParallel(b, devs, sz)
		bare4 = append(bare4, time.Since(start))
	}
	one := median(times[0])
	for n := 1; n <= 4; n++ {
		b.ReportMetric(ms(median(times[n-1])), fmt.Sprintf("disks%d-ms", n))
	}
	b.ReportMetric(float64(median(times[3]))/float64(one), "growth4")
	b.ReportMetric(ms(median(bare1)), "bare1-ms")
	b.ReportMetric(ms(median(bare4)), "bare4-ms")
	b.ReportMetric(float64(median(bare4))/float64(median(bare1)), "bare-growth4")
	b.ReportMetric(float64(median(times[3]))/float64(median(bare4)), "ours4/bare4")
}
