package closure

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// BenchmarkCopyClosure ships a ~400 MB closure to a target in a network
// namespace over the veth link, with the serve-protocol copy into a fresh
// chroot store, and compares it with the raw stream of the same NAR bytes
// to `cat > /dev/null` over the same SSH connection, measured in the same
// iterations. The ratio is copy MB/s over raw MB/s (1.0 = the copy costs
// nothing over moving the bytes).
func BenchmarkCopyClosure(b *testing.B) {
	needNix(b)
	testtarget.Require(b, true)
	file := filepath.Join(b.TempDir(), "bench.nix")
	os.WriteFile(file, []byte(benchClosure), 0o644)
	root := nixBuild(b, file)
	ctx := context.Background()
	infos, err := (&nixcmd.Nix{Env: nixEnv()}).Closure(ctx, "", root)
	if err != nil {
		b.Fatal(err)
	}
	size := nixcmd.Size(infos)

	tt := testtarget.Start(b, testtarget.Options{})
	c, err := remote.Dial(ctx, remote.Target{User: "root", Host: tt.Host, Port: tt.Port}, remote.Options{
		UserConfigFile: "none", SystemConfigFile: "none", Home: b.TempDir(),
		IdentityFiles: []string{tt.ClientKeyFile},
		SSHOptions:    []string{"UserKnownHostsFile=" + tt.WriteKnownHosts("known_hosts"), "GlobalKnownHostsFile=/dev/null"},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sh := c.User()

	raw := func() time.Duration {
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
		if err := sh.Run(ctx, "cat > /dev/null", pr, nil, nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	copyOnce := func(i int) time.Duration {
		dir := filepath.Join(tt.Dir, fmt.Sprintf("store-%d", i))
		defer func() {
			exec.Command("chmod", "-R", "u+w", dir).Run()
			os.RemoveAll(dir)
		}()
		start := time.Now()
		st, err := Copy(ctx, sh, infos, CopyOptions{Store: "local?root=" + dir, NixOptions: [][2]string{{"substituters", ""}}})
		if err != nil {
			b.Fatal(err)
		}
		if st.Paths != len(infos) {
			b.Fatalf("copied %d paths, want %d", st.Paths, len(infos))
		}
		return time.Since(start)
	}

	raw() // warm the page cache and the connection
	var rawTotal, copyTotal time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rawTotal += raw()
		b.StartTimer()
		copyTotal += copyOnce(i)
	}
	b.StopTimer()
	mb := float64(size) / 1e6 * float64(b.N)
	rawMBs, copyMBs := mb/rawTotal.Seconds(), mb/copyTotal.Seconds()
	b.ReportMetric(copyMBs, "copy-MB/s")
	b.ReportMetric(rawMBs, "raw-cat-MB/s")
	b.ReportMetric(copyMBs/rawMBs, "copy/raw")
	b.Logf("closure %d paths, %.1f MB; serve copy %.0f MB/s, raw cat %.0f MB/s over the same SSH link: ratio %.2f (n=%d)",
		len(infos), float64(size)/1e6, copyMBs, rawMBs, copyMBs/rawMBs, b.N)
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
