package e2e

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// installer builds (or finds cached) the test installer tarball.
func installer(t *testing.T) *testvm.Installer {
	t.Helper()
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	inst, err := testvm.BuildInstaller(ctx, testvm.BuildOptions{Log: testLogger{t}})
	if errors.Is(err, testvm.ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// testLogger sends build progress lines to the test log.
type testLogger struct{ t *testing.T }

func (l testLogger) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// serveFile serves one file over HTTP on 127.0.0.1 and returns its URL.
func serveFile(t *testing.T, file string) (url string, port int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+filepath.Base(file) {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, file)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(file), srv.Listener.Addr().(*net.TCPAddr).Port
}

// withoutHostKeys writes a copy of the installer tarball whose kexec/run
// does not carry the host keys over: the installer then makes its own,
// and the machine after the kexec presents another key.
func withoutHostKeys(t *testing.T, tarball string) string {
	t.Helper()
	in, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(t.TempDir(), "installer-forgets-host-keys.tar.gz")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw, _ := gzip.NewWriterLevel(out, gzip.BestSpeed)
	tr, tw := tar.NewReader(zr), tar.NewWriter(zw)
	changed := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = tr
		if hdr.Name == "kexec/run" {
			b, _ := io.ReadAll(tr)
			run := strings.Replace(string(b), `cp -p "$f" ssh/`, `: "$f"`, 1)
			changed = run != string(b)
			hdr.Size = int64(len(run))
			body = strings.NewReader(run)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if !changed {
		t.Fatal("kexec/run has no host key copy to take out")
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return outPath
}

// cutProxy forwards TCP connections to a target until Cut closes them all,
// like a network that drops in the middle of a run.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go testtarget.Relay(c, target)
		}
	}()
	return p
}

func (p *cutProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Cut closes every connection made so far; new ones still go through.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// knownHosts writes a known_hosts file pinning key for 127.0.0.1:port.
func knownHosts(t *testing.T, key ssh.PublicKey, ports ...int) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	var lines string
	for _, p := range ports {
		lines += fmt.Sprintf("[127.0.0.1]:%d %s", p, ssh.MarshalAuthorizedKey(key))
	}
	if err := os.WriteFile(f, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
