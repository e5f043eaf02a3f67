package remote_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// Benchmarks run against a real sshd in a network namespace (veth link) and
// report each figure next to a baseline measured in the same iteration:
// the OpenSSH client for connect and stream, a bare x/crypto session for
// per-command latency. Run: go test -run '^$' -bench . ./internal/remote/

func benchTarget(b *testing.B) (*testtarget.Target, remote.Options) {
	tt := testtarget.Start(b, testtarget.Options{})
	return tt, tt.ClientOptions(b.TempDir())
}

// openssh runs the OpenSSH client against tt, or returns false when the
// ssh binary is missing (the baseline is then not reported).
func openssh(b *testing.B, tt *testtarget.Target, cmd string, stdin io.Reader) bool {
	if _, err := exec.LookPath("ssh"); err != nil {
		return false
	}
	c := exec.Command("ssh", "-i", tt.ClientKeyFile, "-o", "UserKnownHostsFile="+filepath.Join(tt.Dir, "known_hosts"),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-p", strconv.Itoa(tt.Port), "root@"+tt.Host, cmd)
	c.Stdin = stdin
	if out, err := c.CombinedOutput(); err != nil {
		b.Fatalf("openssh %s: %v: %s", cmd, err, out)
	}
	return true
}

func BenchmarkConnect(b *testing.B) {
	tt, o := benchTarget(b)
	tg, _ := remote.ParseTarget(tt.Destination())
	var ours, base time.Duration
	haveBase := false
	for b.Loop() {
		start := time.Now()
		c, err := remote.Dial(context.Background(), tg, o)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Run(context.Background(), "true", nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		c.Close()
		ours += time.Since(start)
		start = time.Now()
		haveBase = openssh(b, tt, "true", nil)
		base += time.Since(start)
	}
	b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "ms/connect+true")
	if haveBase {
		b.ReportMetric(float64(base.Milliseconds())/float64(b.N), "ms/openssh")
		b.ReportMetric(float64(ours)/float64(base), "ratio")
	}
}

func BenchmarkCommandLatency(b *testing.B) {
	tt, o := benchTarget(b)
	tg, _ := remote.ParseTarget(tt.Destination())
	c, err := remote.Dial(context.Background(), tg, o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// Baseline: a bare x/crypto session on its own connection.
	key, _ := os.ReadFile(tt.ClientKeyFile)
	signer, _ := ssh.ParsePrivateKey(key)
	raw, err := ssh.Dial("tcp", tt.Addr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(c.HostKey()), HostKeyAlgorithms: []string{c.HostKey().Type()}})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	var ours, base time.Duration
	for b.Loop() {
		start := time.Now()
		if err := c.Run(context.Background(), "true", nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		start = time.Now()
		s, err := raw.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Run("true"); err != nil {
			b.Fatal(err)
		}
		s.Close()
		base += time.Since(start)
	}
	b.ReportMetric(float64(ours.Microseconds())/float64(b.N)/1000, "ms/run")
	b.ReportMetric(float64(base.Microseconds())/float64(b.N)/1000, "ms/bare-session")
	b.ReportMetric(float64(ours)/float64(base), "ratio")
}

const streamSize = 64 << 20

func BenchmarkUpload64MiB(b *testing.B) {
	tt, o := benchTarget(b)
	tg, _ := remote.ParseTarget(tt.Destination())
	c, err := remote.Dial(context.Background(), tg, o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	root, err := c.Root(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), streamSize/16)
	dst := filepath.Join(b.TempDir(), "upload.bin")
	var upload, stream, base time.Duration
	haveBase := false
	for b.Loop() {
		start := time.Now()
		if err := root.Upload(context.Background(), bytes.NewReader(data), dst, 0o600, 0, 0); err != nil {
			b.Fatal(err)
		}
		upload += time.Since(start)
		start = time.Now()
		if err := c.Run(context.Background(), "cat >/dev/null", bytes.NewReader(data), nil, nil); err != nil {
			b.Fatal(err)
		}
		stream += time.Since(start)
		start = time.Now()
		haveBase = openssh(b, tt, "cat >/dev/null", bytes.NewReader(data))
		base += time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return float64(streamSize) * float64(b.N) / d.Seconds() / (1 << 20) }
	b.ReportMetric(mbps(upload), "MiB/s-upload-verified")
	b.ReportMetric(mbps(stream), "MiB/s-stream")
	if haveBase {
		b.ReportMetric(mbps(base), "MiB/s-openssh")
		b.ReportMetric(mbps(stream)/mbps(base), "ratio-stream/openssh")
	}
}
