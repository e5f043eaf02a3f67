package remote_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestFailureKind dials real endpoints that fail in each way a restarting
// machine fails, and checks the name the waits report for each.
func TestFailureKind(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { garbage.Close() })
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	block, err := ssh.MarshalPrivateKey(other, "")
	if err != nil {
		t.Fatal(err)
	}
	strangerKey := filepath.Join(t.TempDir(), "stranger")
	if err := os.WriteFile(strangerKey, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, dest string
		change     func(*remote.Options)
		want       string
	}{
		{"refused", "root@" + refused, nil, remote.FailTCPRefused},
		{"timeout", "root@" + tt.SilentAddr(), func(o *remote.Options) { o.SSHOptions = append(o.SSHOptions, "ConnectTimeout=1") }, remote.FailTCPTimeout},
		{"not ssh", "root@" + garbage.Addr().String(), nil, remote.FailHandshake},
		{"host key", tt.Destination(), func(o *remote.Options) { o.ExpectHostKey = otherSigner.PublicKey() }, remote.FailHostKey},
		{"login", tt.Destination(), func(o *remote.Options) { o.IdentityFiles = []string{strangerKey} }, remote.FailAuth},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := options(t, tt)
			if c.change != nil {
				c.change(&o)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl, err := remote.Dial(ctx, target(t, c.dest), o)
			if err == nil {
				cl.Close()
				t.Fatalf("Dial(%s) succeeded", c.dest)
			}
			if got := remote.FailureKind(err); got != c.want {
				t.Errorf("FailureKind(%v) = %q, want %q", err, got, c.want)
			}
		})
	}
}

// TestWaitUpReportsEveryTry waits on a refused port: every failed attempt
// reaches the callback, and the final error names the last one's kind.
func TestWaitUpReportsEveryTry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var kinds []string
	o := remote.Options{UserConfigFile: "none", SystemConfigFile: "none", Home: t.TempDir(), Password: "x"}
	_, err = remote.WaitUp(ctxT(t, 2500*time.Millisecond), target(t, "root@"+addr), o, func(err error) {
		kinds = append(kinds, remote.FailureKind(err))
	})
	if len(kinds) < 2 {
		t.Fatalf("the callback saw %d tries in 2.5 s, want at least 2", len(kinds))
	}
	for _, k := range kinds {
		if k != remote.FailTCPRefused {
			t.Errorf("a try got %q, want %q", k, remote.FailTCPRefused)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "last: "+remote.FailTCPRefused) {
		t.Errorf("WaitUp = %v, want the last try's kind", err)
	}
}
