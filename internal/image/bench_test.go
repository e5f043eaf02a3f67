package image

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// exampleLayout is disko-compile's built-in example (an ESP and an ext4 root), the layout
// most machines start from.
const exampleLayout = `{"disk":{"main":{"device":"/dev/vda","imageSize":"4G","content":{"type":"gpt","partitions":{
  "ESP":{"size":"512M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot","mountOptions":["umask=0077"]}},
  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`

// BenchmarkImageVsDd builds the example layout's image with a payload in the root
// filesystem (files of random bytes standing in for a system closure: 0, 100 MiB and
// 1 GiB) and compares the time with dd writing as many bytes as the image holds (its
// allocated blocks, synced as the image is), and with copying the payload's bytes into
// one file (copyTime): the least any build must do, since it reads what it writes. It
// reports both
// ratios, and the peak RSS of
// the build's whole process tree (the build runs as a child process; wait4's ru_maxrss
// covers its descendants), which must stay flat as the payload grows.
//
//	go test ./internal/image -run '^$' -bench ImageVsDd -benchtime 3x
func BenchmarkImageVsDd(b *testing.B) {
	for _, mib := range []int64{0, 100, 1024} {
		b.Run(fmt.Sprintf("payload-%dMiB", mib), func(b *testing.B) {
			payload := b.TempDir()
			writePayload(b, payload, mib)
			var ours, base, copies []time.Duration
			var rss int64
			for range b.N {
				copies = append(copies, copyTime(b, payload))
				out := b.TempDir()
				job := helperJob{Layout: exampleLayout, Out: out, Files: []File{{Source: payload, Dest: "/payload"}}}
				start := time.Now()
				maxrss := runJob(b, job)
				ours = append(ours, time.Since(start))
				rss = max(rss, maxrss)
				allocated := allocatedBytes(b, filepath.Join(out, "main.raw"))
				os.RemoveAll(out)
				base = append(base, ddTime(b, allocated))
				b.Logf("image holds %d MiB", allocated>>20)
			}
			reportRatios(b, ours, base, copies, rss)
		})
	}
}

// BenchmarkSystemImage builds the example layout's image with --system: a closure of
// 100 MiB or 1 GiB (a toplevel depending on one store path of random bytes, built with
// the host's nix), copied in, registered and made the system profile. It reports the
// time against dd writing as many bytes as the image holds and against copying the
// closure's bytes (copyTime), and the peak RSS of the build's process tree (nix-store included),
// which must not grow with the closure. The case standin is the demo's: the same layout
// with the stand-in NixOS system of the end-to-end tests (internal/testvm: kernel,
// initrd, busybox userland, sshd; 36 MB in 3 store paths), whose switch-to-configuration
// boot installs systemd-boot onto the ESP.
//
//	go test ./internal/image -run '^$' -bench SystemImage -benchtime 3x
func BenchmarkSystemImage(b *testing.B) {
	b.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false")
	b.Run("standin", func(b *testing.B) {
		layout, err := config.Load([]byte(exampleLayout), config.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		cfg, err := nixos.JSON(layout)
		if err != nil {
			b.Fatal(err)
		}
		sys, err := testvm.BuildSystem(context.Background(), testvm.SystemOptions{NixOSConfig: cfg})
		if err != nil {
			b.Skipf("the stand-in system cannot be built here: %v", err)
		}
		benchSystem(b, sys.Toplevel)
	})
	for _, mib := range []int64{100, 1024} {
		b.Run(fmt.Sprintf("closure-%dMiB", mib), func(b *testing.B) {
			expr := filepath.Join(b.TempDir(), "system.nix")
			os.WriteFile(expr, []byte(fmt.Sprintf(`let blob = derivation { name = "bench-blob-%[1]d"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "/usr/bin/head -c %[1]dM /dev/urandom > $out"]; };
in derivation { name = "bench-toplevel-%[1]d"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "/bin/mkdir $out; echo ${blob} > $out/blob"]; }`, mib)), 0o644)
			out, err := exec.Command("nix-build", "--no-out-link", expr).Output()
			if err != nil {
				b.Skipf("nix-build cannot build here: %v", err)
			}
			benchSystem(b, strings.TrimSpace(string(out)))
		})
	}
}

// benchSystem builds the example layout's image with toplevel b.N times and reports the
// ratios against dd and against copying the closure's bytes.
func benchSystem(b *testing.B, toplevel string) {
	closure, err := exec.Command("nix-store", "--query", "--requisites", toplevel).Output()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("system %s, closure of %d store paths", toplevel, len(strings.Fields(string(closure))))
	var ours, base, copies []time.Duration
	var rss int64
	for range b.N {
		copies = append(copies, copyTime(b, strings.Fields(string(closure))...))
		out := b.TempDir()
		start := time.Now()
		rss = max(rss, runJob(b, helperJob{Layout: exampleLayout, Out: out, System: toplevel}))
		ours = append(ours, time.Since(start))
		allocated := allocatedBytes(b, filepath.Join(out, "main.raw"))
		os.RemoveAll(out)
		base = append(base, ddTime(b, allocated))
		b.Logf("image holds %d MiB", allocated>>20)
	}
	reportRatios(b, ours, base, copies, rss)
}

// reportRatios reports the medians of the image builds, dd runs and payload copies, the
// image's ratio to each, and the peak RSS (KiB) in MiB.
func reportRatios(b *testing.B, ours, dd, copies []time.Duration, rss int64) {
	b.ReportMetric(ms(median(ours)), "image-ms")
	b.ReportMetric(ms(median(dd)), "dd-ms")
	b.ReportMetric(ms(median(copies)), "copy-ms")
	b.ReportMetric(float64(median(ours))/float64(median(dd)), "ratio")
	b.ReportMetric(float64(median(ours))/float64(median(copies)), "ratio-copy")
	b.ReportMetric(float64(rss)/1024, "peak-rss-MiB")
}

// copyTime is how long it takes to read the bytes of srcs (files or trees) and write
// them into one file in 1 MiB blocks, synced once: dd with the payload as its input.
func copyTime(b *testing.B, srcs ...string) time.Duration {
	dst, err := os.Create(filepath.Join(b.TempDir(), "copy"))
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	for _, src := range srcs {
		err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{f}, buf)
			return err
		})
		if err != nil {
			break
		}
	}
	if err == nil {
		err = dst.Sync()
	}
	if err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// allocatedBytes is the space a (sparse) file takes.
func allocatedBytes(b *testing.B, file string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		b.Fatal(err)
	}
	return st.Blocks * 512
}

// ddTime is how long dd takes to write and sync as many bytes, in 1 MiB blocks.
func ddTime(b *testing.B, bytes int64) time.Duration {
	file := filepath.Join(b.TempDir(), "dd")
	defer os.Remove(file)
	start := time.Now()
	dd := exec.Command("dd", "if=/dev/zero", "of="+file, "bs=1M", "count="+strconv.FormatInt((bytes+(1<<20)-1)>>20, 10), "conv=fsync", "status=none")
	if out, err := dd.CombinedOutput(); err != nil {
		b.Fatalf("dd: %v\n%s", err, out)
	}
	return time.Since(start)
}

// writePayload fills dir with mib MiB of random bytes in 1 MiB files (a store path holds
// many files; random bytes defeat any compression).
func writePayload(b *testing.B, dir string, mib int64) {
	buf := make([]byte, 1<<20)
	for i := range mib {
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// runJob runs a build in a child process (the test binary as helper) and returns the
// peak RSS of its process tree in KiB.
func runJob(b *testing.B, job helperJob) int64 {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(job)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"="+string(data))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
