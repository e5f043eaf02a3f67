package remote_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestUnknownHostKeyWithoutKnownHosts reproduces nixos-anywhere's own
// defaults, which users pass out of habit: UserKnownHostsFile=/dev/null
// with StrictHostKeyChecking=no connects to a host whose key nobody
// recorded, every time, and writes no known_hosts anywhere.
// GlobalKnownHostsFile=/dev/null keeps this machine's /etc/ssh out of it.
func TestUnknownHostKeyWithoutKnownHosts(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{Loopback: true})
	for _, file := range []string{"/dev/null", "none"} {
		t.Run(file, func(t *testing.T) {
			home := t.TempDir()
			o := remote.Options{
				UserConfigFile: "none", SystemConfigFile: "none", Home: home,
				IdentityFiles: []string{tt.ClientKeyFile},
				SSHOptions:    []string{"UserKnownHostsFile=" + file, "StrictHostKeyChecking=no", "GlobalKnownHostsFile=/dev/null"},
			}
			for i := range 2 {
				c := dial(t, tt, o)
				if got := output(t, c, "echo ok"); got != "ok" {
					t.Errorf("connection %d: echo ok = %q", i+1, got)
				}
				c.Close()
			}
			if _, err := os.Stat(filepath.Join(home, ".ssh")); !os.IsNotExist(err) {
				t.Errorf("%s/.ssh exists (%v): something was recorded", home, err)
			}
			if st, err := os.Stat(os.DevNull); err != nil || st.Mode()&os.ModeCharDevice == 0 {
				t.Errorf("%s is no longer a character device: %v, %v", os.DevNull, st.Mode(), err)
			}
		})
	}
}

// TestConnectionAttemptsAndAddressFamily dials with the two connection
// options implemented for nixos-anywhere habits.
func TestConnectionAttemptsAndAddressFamily(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	with := func(opts ...string) remote.Options {
		o := options(t, tt)
		o.SSHOptions = append(o.SSHOptions, opts...)
		return o
	}

	c := dial(t, tt, with("AddressFamily=inet"))
	if got := output(t, c, "echo ok"); got != "ok" {
		t.Errorf("AddressFamily=inet: echo ok = %q", got)
	}
	_, err := remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), with("AddressFamily=inet6"))
	if err == nil || !strings.Contains(err.Error(), "tcp6") {
		t.Errorf("AddressFamily=inet6 to an IPv4 address = %v, want a tcp6 dial error", err)
	}

	// A closed port: every attempt is refused at once, one second apart.
	closed := "root@" + net.JoinHostPort(tt.Host, "2")
	start := time.Now()
	_, err = remote.Dial(ctxT(t, 20*time.Second), target(t, closed), with("ConnectionAttempts=3"))
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "3 attempts, ConnectionAttempts=3") || took < 2*time.Second {
		t.Errorf("ConnectionAttempts=3 to a closed port = %v after %s, want 3 attempts over 2s or more", err, took)
	}

	// A target that comes up while the client keeps trying: a port that
	// starts forwarding to the (ready) sshd only after 1.5s.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	late := l.Addr().String()
	l.Close()
	done := make(chan error, 1)
	go func() {
		o := with("ConnectionAttempts=30", "UserKnownHostsFile=/dev/null", "StrictHostKeyChecking=no")
		c, err := remote.Dial(ctxT(t, 60*time.Second), target(t, "root@"+late), o)
		if err == nil {
			_, err = c.Output(ctxT(t, 10*time.Second), "true")
			c.Close()
		}
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	if l, err = net.Listen("tcp", late); err != nil {
		t.Fatalf("listening on %s again: %v", late, err)
	}
	t.Cleanup(func() { l.Close() })
	go forward(l, tt.Addr())
	if err := <-done; err != nil {
		t.Errorf("ConnectionAttempts=30 to a port that opens after 1.5s = %v", err)
	}
}

// forward relays every connection accepted on l to addr.
func forward(l net.Listener, addr string) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go testtarget.Relay(in, addr)
	}
}

// TestAlgorithmOptions: KexAlgorithms, Ciphers, MACs and HostKeyAlgorithms
// reach the handshake (sshd's debug log names what was negotiated).
func TestAlgorithmOptions(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{Loopback: true, LogLevel: "DEBUG1"})
	with := func(opts ...string) remote.Options {
		o := options(t, tt)
		o.SSHOptions = append(o.SSHOptions, opts...)
		return o
	}
	c := dial(t, tt, with("KexAlgorithms=curve25519-sha256", "Ciphers=aes256-ctr", "MACs=hmac-sha2-512"))
	output(t, c, "true")
	for _, want := range []string{"kex: algorithm: curve25519-sha256", "kex: client->server cipher: aes256-ctr MAC: hmac-sha2-512"} {
		if !strings.Contains(tt.SSHDLog(), want) {
			t.Errorf("sshd log lacks %q:\n%s", want, tt.SSHDLog())
		}
	}

	// x/crypto implements 3des-cbc, sshd no longer offers it.
	_, err := remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), with("Ciphers=3des-cbc"))
	if err == nil || !strings.Contains(err.Error(), "no common algorithm") {
		t.Errorf("Ciphers=3des-cbc = %v, want no common algorithm", err)
	}

	// Both host keys known: x/crypto would pick ECDSA; HostKeyAlgorithms
	// asks for ED25519.
	c = dial(t, tt, with("HostKeyAlgorithms=ssh-ed25519"))
	if !bytes.Equal(c.HostKey().Marshal(), tt.HostKeys[0].Marshal()) {
		t.Errorf("HostKeyAlgorithms=ssh-ed25519: the server presented %s", c.HostKey().Type())
	}
	o := with("HostKeyAlgorithms=ecdsa-sha2-nistp256")
	o.SSHOptions = append(o.SSHOptions, "UserKnownHostsFile="+tt.WriteKnownHosts("kh_ed25519", tt.HostKeys[0]))
	_, err = remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), o)
	if err == nil || !strings.Contains(err.Error(), "allows none of the key types known_hosts has") {
		t.Errorf("HostKeyAlgorithms without the recorded type = %v, want a refusal naming known_hosts", err)
	}
}

// TestAuthenticationOptions: PreferredAuthentications orders the methods,
// PasswordAuthentication=no keeps the password back.
func TestAuthenticationOptions(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{Loopback: true, User: "erin", Password: "pa55 word"})
	accepted := func() int { return strings.Count(tt.SSHDLog(), "Accepted password for erin") }
	o := options(t, tt)
	o.Password = tt.Password
	dial(t, tt, o)
	if n := accepted(); n != 0 {
		t.Errorf("with a key and a password, the password was used %d times; keys come first", n)
	}
	o.SSHOptions = append(o.SSHOptions, "PreferredAuthentications=password,publickey")
	dial(t, tt, o)
	if n := accepted(); n != 1 {
		t.Errorf("PreferredAuthentications=password,publickey: password accepted %d times, want 1\n%s", n, tt.SSHDLog())
	}

	// This sshd takes passwords only through the "password" method.
	o = options(t, tt)
	o.IdentityFiles, o.Password = nil, tt.Password
	o.SSHOptions = append(o.SSHOptions, "PasswordAuthentication=no")
	_, err := remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), o)
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("PasswordAuthentication=no with only a password = %v, want a refusal", err)
	}
	o.SSHOptions = append(o.SSHOptions, "KbdInteractiveAuthentication=no")
	_, err = remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), o)
	if err == nil || !strings.Contains(err.Error(), "no credentials") || !strings.Contains(err.Error(), "the password is not sent") {
		t.Errorf("PasswordAuthentication=no, KbdInteractiveAuthentication=no = %v, want no credentials, saying why", err)
	}
	if n := accepted(); n != 1 {
		t.Errorf("password accepted %d times in all, want 1", n)
	}
}
