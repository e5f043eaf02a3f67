package closure

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// benchClosure is a few hundred MB of random data in a handful of paths
// (closure-copy.md's "few-large" shape), plus a root referencing them.
const benchClosure = `{ n ? 4, mb ? 100 }:
let
  system = "x86_64-linux";
  leaf = i: derivation {
    name = "bench-random-${toString i}"; inherit system; salt = "anywhere-bench";
    builder = "/bin/sh";
    args = [ "-c" "/bin/dd if=/dev/urandom of=$out bs=1M count=${toString mb} status=none" ];
  };
in derivation {
  name = "bench-root"; inherit system;
  builder = "/bin/sh";
  refs = toString (builtins.genList leaf n);
  args = [ "-c" "echo $refs > $out" ];
}
`

// BenchmarkCopyClosure ships a ~400 MB closure to an sshd on loopback (a
// network namespace's veth link would add nothing the ratio depends on, and
// loopback needs no shared lock), with the serve-protocol copy into a fresh
// chroot store, and compares it with the raw stream of the same NAR bytes
// to `cat > /dev/null` over the same SSH connection, measured in the same
// iterations. The ratio is copy MB/s over raw MB/s (1.0 = the copy costs
// nothing over moving the bytes). Unpaced, everything (sender, both ssh
// ends, receiver) shares this machine's cores, so the receiving nix-store's
// own CPU (BenchmarkServeLocal measures it) shows as lost throughput; paced
// to what a 1 or 2.5 Gb/s link carries, both routes send at the same rate
// and the ratio shows whether the copy keeps up with such a link.
func BenchmarkCopyClosure(b *testing.B) {
	needNix(b)
	testtarget.Require(b, false)
	file := filepath.Join(b.TempDir(), "bench.nix")
	os.WriteFile(file, []byte(benchClosure), 0o644)
	root := nixBuild(b, file)
	ctx := context.Background()
	infos, err := (&nixcmd.Nix{Env: nixEnv()}).Closure(ctx, "", root)
	if err != nil {
		b.Fatal(err)
	}
	size := nixcmd.Size(infos)

	tt := testtarget.Start(b, testtarget.Options{Loopback: true})
	c, err := remote.Dial(ctx, remote.Target{User: "root", Host: tt.Host, Port: tt.Port}, tt.ClientOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sh := c.User()

	// rate, when not 0, paces the sender to that many bytes per second in
	// both routes, as a link of that speed would.
	raw := func(rate float64) time.Duration {
		pr, pw := io.Pipe()
		go func() {
			w := &pacedWriter{w: pw, rate: rate, start: time.Now()}
			for _, in := range infos {
				if err := DumpNAR(w, in.Path); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.Close()
		}()
		start := time.Now()
		if err := sh.Run(ctx, "cat > /dev/null", pr, nil, nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	// copyOnce copies into the fresh store dir, which the caller removes.
	copyOnce := func(dir string, rate float64) time.Duration {
		start := time.Now()
		var src NARSource = LocalStore{}
		if rate > 0 {
			src = pacedSource{w: &pacedWriter{rate: rate, start: start}}
		}
		st, err := Copy(ctx, sh, infos, CopyOptions{Store: "local?root=" + dir, NixOptions: [][2]string{{"substituters", ""}}, Source: src})
		if err != nil {
			b.Fatal(err)
		}
		if st.Paths != len(infos) {
			b.Fatalf("copied %d paths, want %d", st.Paths, len(infos))
		}
		return time.Since(start)
	}

	raw(0) // warm the page cache and the connection
	for _, link := range []struct {
		name string
		rate float64
	}{
		{"unpaced", 0},         // CPU-bound: both ends share this machine's cores
		{"paced-1Gbit", 117e6}, // what a 1 Gb/s link carries
		{"paced-2.5Gbit", 293e6},
	} {
		b.Run(link.name, func(b *testing.B) {
			var rawTotal, copyTotal, rawCPU, copyCPU time.Duration
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// The pprof labels tell the routes apart in -cpuprofile
				// (pprof -tagfocus route=copy).
				cpu := processCPU(b)
				pprof.Do(ctx, pprof.Labels("route", "raw"), func(context.Context) { rawTotal += raw(link.rate) })
				rawCPU += processCPU(b) - cpu
				b.StartTimer()
				dir := filepath.Join(tt.Dir, fmt.Sprintf("store-%d", i))
				cpu = processCPU(b)
				pprof.Do(ctx, pprof.Labels("route", "copy"), func(context.Context) { copyTotal += copyOnce(dir, link.rate) })
				copyCPU += processCPU(b) - cpu
				b.StopTimer()
				exec.Command("chmod", "-R", "u+w", dir).Run()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.StopTimer()
			mb := float64(size) / 1e6 * float64(b.N)
			rawMBs, copyMBs := mb/rawTotal.Seconds(), mb/copyTotal.Seconds()
			b.ReportMetric(copyMBs, "copy-MB/s")
			b.ReportMetric(rawMBs, "raw-cat-MB/s")
			b.ReportMetric(copyMBs/rawMBs, "copy/raw")
			// The sender's own CPU (this process: NAR dump, protocol, SSH
			// encryption), load-independent unlike the wall-clock figures.
			b.ReportMetric(copyCPU.Seconds()/(mb/1000), "copy-sender-cpu-s/GB")
			b.ReportMetric(rawCPU.Seconds()/(mb/1000), "raw-sender-cpu-s/GB")
			b.Logf("closure %d paths, %.1f MB, %s; serve copy %.0f MB/s, raw cat %.0f MB/s over the same SSH link: ratio %.2f (n=%d)",
				len(infos), float64(size)/1e6, link.name, copyMBs, rawMBs, copyMBs/rawMBs, b.N)
		})
	}
}

// pacedWriter writes to w no faster than rate bytes per second since start
// (0: unpaced).
type pacedWriter struct {
	w     io.Writer
	rate  float64
	start time.Time
	n     int64
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.rate > 0 {
		due := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
		time.Sleep(time.Until(due))
	}
	return n, err
}

// pacedSource dumps local store paths through one pacedWriter, so the
// whole copy keeps its rate.
type pacedSource struct{ w *pacedWriter }

func (s pacedSource) DumpNAR(_ context.Context, w io.Writer, path string) error {
	s.w.w = w
	return DumpNAR(s.w, path)
}

// BenchmarkNixCopyOpenSSH is the reference route nixos-anywhere takes
// (`nix copy --to ssh://` through the ssh binary) on the same link, with the
// same raw-cat baseline through OpenSSH, for context.
func BenchmarkNixCopyOpenSSH(b *testing.B) {
	needNix(b)
	testtarget.Require(b, true)
	if _, err := exec.LookPath("ssh"); err != nil {
		b.Skip("ssh is not installed")
	}
	file := filepath.Join(b.TempDir(), "bench.nix")
	os.WriteFile(file, []byte(benchClosure), 0o644)
	root := nixBuild(b, file)
	infos, err := (&nixcmd.Nix{Env: nixEnv()}).Closure(context.Background(), "", root)
	if err != nil {
		b.Fatal(err)
	}
	size := nixcmd.Size(infos)
	tt := testtarget.Start(b, testtarget.Options{})
	sshOpts := fmt.Sprintf("-i %s -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes",
		tt.ClientKeyFile, tt.WriteKnownHosts("known_hosts"))
	var paths []string
	for _, in := range infos {
		paths = append(paths, in.Path)
	}
	raw := func() time.Duration {
		start := time.Now()
		cmd := exec.Command("sh", "-c", fmt.Sprintf("nix-store --export %s | ssh %s root@%s 'cat > /dev/null'", strings.Join(paths, " "), sshOpts, tt.Host))
		cmd.Env = nixEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		return time.Since(start)
	}
	raw()
	var rawTotal, copyTotal time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rawTotal += raw()
		dir := filepath.Join(tt.Dir, fmt.Sprintf("store-%d", i))
		b.StartTimer()
		start := time.Now()
		cmd := exec.Command("nix", "copy", "--no-check-sigs", "--to", "ssh://root@"+tt.Host+"?remote-store=local%3Froot%3D"+dir, root)
		cmd.Env = append(nixEnv(), "NIX_SSHOPTS="+sshOpts)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("nix copy: %v: %s", err, out)
		}
		copyTotal += time.Since(start)
		b.StopTimer()
		exec.Command("chmod", "-R", "u+w", dir).Run()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.StopTimer()
	mb := float64(size) / 1e6 * float64(b.N)
	rawMBs, copyMBs := mb/rawTotal.Seconds(), mb/copyTotal.Seconds()
	b.ReportMetric(copyMBs, "copy-MB/s")
	b.ReportMetric(rawMBs, "raw-cat-MB/s")
	b.ReportMetric(copyMBs/rawMBs, "copy/raw")
	b.Logf("nix copy over OpenSSH %.0f MB/s, export | ssh cat %.0f MB/s: ratio %.2f (n=%d)", copyMBs, rawMBs, copyMBs/rawMBs, b.N)
}

// timedRunner runs the remote side of a copy as a local process, like
// localRunner, and adds up the CPU time it used.
type timedRunner struct{ cpu time.Duration }

func (r *timedRunner) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "sh", "-c", "exec "+cmd)
	c.Env = nixEnv()
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	err := c.Run()
	if c.ProcessState != nil {
		r.cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	return err
}

// BenchmarkServeLocal separates Nix's own cost from the SSH link's: the same
// closure as BenchmarkCopyClosure goes through pipes into a local
// `nix-store --serve --write` (a fresh chroot store), into `cat > FILE` on
// the same file system (the bytes written, nothing parsed), and into
// `cat > /dev/null`, alternating in the same iterations. It reports each
// route's MB/s, the receiver's CPU seconds per GB, and the ratios to the
// /dev/null route.
func BenchmarkServeLocal(b *testing.B) {
	needNix(b)
	file := filepath.Join(b.TempDir(), "bench.nix")
	os.WriteFile(file, []byte(benchClosure), 0o644)
	root := nixBuild(b, file)
	ctx := context.Background()
	infos, err := (&nixcmd.Nix{Env: nixEnv()}).Closure(ctx, "", root)
	if err != nil {
		b.Fatal(err)
	}
	size := nixcmd.Size(infos)
	work := b.TempDir()

	stream := func(r *timedRunner, cmd string) time.Duration {
		pr, pw := io.Pipe()
		go func() {
			for _, in := range infos {
				if err := DumpNAR(pw, in.Path); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.Close()
		}()
		start := time.Now()
		if err := r.Run(ctx, cmd, pr, nil, nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var devNull, toFile, serve timedRunner
	var devNullT, toFileT, serveT time.Duration
	stream(&timedRunner{}, "cat > /dev/null") // warm the page cache
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		devNullT += stream(&devNull, "cat > /dev/null")
		out := filepath.Join(work, "nar")
		toFileT += stream(&toFile, "cat > "+out)
		os.Remove(out)
		dir := filepath.Join(work, fmt.Sprintf("store-%d", i))
		start := time.Now()
		if _, err := Copy(ctx, &serve, infos, CopyOptions{Store: "local?root=" + dir}); err != nil {
			b.Fatal(err)
		}
		serveT += time.Since(start)
		exec.Command("chmod", "-R", "u+w", dir).Run()
		os.RemoveAll(dir)
	}
	b.StopTimer()
	gb := float64(size) / 1e9 * float64(b.N)
	mbs := func(d time.Duration) float64 { return gb * 1000 / d.Seconds() }
	b.ReportMetric(mbs(serveT), "serve-MB/s")
	b.ReportMetric(mbs(toFileT), "cat-file-MB/s")
	b.ReportMetric(mbs(devNullT), "cat-null-MB/s")
	b.ReportMetric(devNullT.Seconds()/serveT.Seconds(), "serve/null")
	b.ReportMetric(devNullT.Seconds()/toFileT.Seconds(), "file/null")
	b.ReportMetric(serve.cpu.Seconds()/gb, "nix-store-cpu-s/GB")
	b.ReportMetric(toFile.cpu.Seconds()/gb, "cat-file-cpu-s/GB")
	b.ReportMetric(devNull.cpu.Seconds()/gb, "cat-null-cpu-s/GB")
}

// processCPU is the CPU time this process has used (user and system).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
