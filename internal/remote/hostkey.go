package remote

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyQuestion is what an interactive prompt shows about an unknown key.
type HostKeyQuestion struct {
	Host        string // name looked up in known_hosts, e.g. "[10.0.0.2]:2222"
	Addr        string // address actually dialled
	Key         ssh.PublicKey
	Fingerprint string // SHA256:…
	File        string // known_hosts file the key will be added to
}

// HostKeyError is a refused host key. Known is empty for an unknown key and
// lists the recorded keys (file and line) for a changed one.
type HostKeyError struct {
	Host     string
	Addr     string
	Key      ssh.PublicKey
	Known    []knownhosts.KnownKey
	Expected ssh.PublicKey // set when a pinned key did not match
	Revoked  bool
	Files    []string // known_hosts files consulted
	Reason   string   // why an unknown key was not accepted
}

// Unknown reports whether the key was refused only because the host is not
// in known_hosts.
func (e *HostKeyError) Unknown() bool {
	return e.Expected == nil && !e.Revoked && len(e.Known) == 0
}

func (e *HostKeyError) Error() string {
	got := keyString(e.Key)
	switch {
	case e.Expected != nil:
		return fmt.Sprintf("host key verification failed for %s (%s): got %s, but the key pinned for this host is %s; "+
			"the machine answering is not the one the installer talked to before",
			e.Host, e.Addr, got, keyString(e.Expected))
	case e.Revoked:
		return fmt.Sprintf("host key verification failed for %s (%s): %s is marked @revoked in known_hosts", e.Host, e.Addr, got)
	case len(e.Known) > 0:
		var known []string
		for _, k := range e.Known {
			known = append(known, fmt.Sprintf("%s:%d has %s", k.Filename, k.Line, keyString(k.Key)))
		}
		k := e.Known[0]
		return fmt.Sprintf("host key verification failed for %s (%s): REMOTE HOST IDENTIFICATION HAS CHANGED: "+
			"it presented %s, but %s; if the change is expected (e.g. a reinstall), remove the old entry with "+
			"`ssh-keygen -R %s -f %s`", e.Host, e.Addr, got, strings.Join(known, "; "), hostForKeygen(e.Host), k.Filename)
	default:
		return fmt.Sprintf("host key verification failed for %s (%s): unknown host key %s (not in %s); %s. "+
			"Check the fingerprint out of band, then re-run with --ssh-option StrictHostKeyChecking=accept-new "+
			"or add the key to known_hosts",
			e.Host, e.Addr, got, strings.Join(e.Files, ", "), e.Reason)
	}
}

func keyString(k ssh.PublicKey) string {
	if k == nil {
		return "no key"
	}
	return keyTypeName(k.Type()) + " key " + ssh.FingerprintSHA256(k)
}

func keyTypeName(t string) string {
	switch {
	case strings.Contains(t, "ed25519"):
		return "ED25519"
	case strings.Contains(t, "ecdsa"):
		return "ECDSA"
	case strings.Contains(t, "rsa"):
		return "RSA"
	}
	return strings.ToUpper(t)
}

// hostForKeygen turns "host:22" back into what ssh-keygen -R expects.
func hostForKeygen(hostport string) string {
	return knownhosts.Normalize(hostport)
}

// hostKeyChecker verifies one hop's host key: against a pinned key, or
// against known_hosts, recording unknown keys when the policy allows.
type hostKeyChecker struct {
	cfg    *Config
	addr   string
	prompt func(HostKeyQuestion) (bool, error)

	mu   sync.Mutex
	seen ssh.PublicKey
}

func (h *hostKeyChecker) files() []string {
	return append(append([]string{}, h.cfg.UserKnownHostsFiles...), h.cfg.GlobalKnownHostsFiles...)
}

// db loads the known_hosts files that exist.
func (h *hostKeyChecker) db() (ssh.HostKeyCallback, error) {
	var existing []string
	for _, f := range h.files() {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("known_hosts %s: %w", f, err)
		}
	}
	if len(existing) == 0 {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts (%s): %w", strings.Join(existing, ", "), err)
	}
	return cb, nil
}

var (
	probeKeyOnce sync.Once
	probeKey     ssh.PublicKey
)

// algorithms returns the host key algorithms to negotiate: only the types
// recorded for this host (or the pinned type), so that a server offering
// several key types presents one we can verify, and of those only the ones
// HostKeyAlgorithms allows. nil means "any".
func (h *hostKeyChecker) algorithms() ([]string, error) {
	if h.cfg.ExpectHostKey != nil {
		return algorithmsFor(h.cfg.ExpectHostKey.Type()), nil
	}
	known, err := h.knownAlgorithms()
	if err != nil || h.cfg.HostKeyAlgorithms == nil {
		return known, err
	}
	if known == nil {
		return h.cfg.HostKeyAlgorithms, nil
	}
	var algos []string
	for _, a := range h.cfg.HostKeyAlgorithms {
		if slices.Contains(known, a) {
			algos = append(algos, a)
		}
	}
	if len(algos) == 0 {
		return nil, fmt.Errorf("HostKeyAlgorithms for %s (%s) allows none of the key types known_hosts has for it (%s); "+
			"allow one of them, or remove the host's entries with `ssh-keygen -R %s`",
			h.cfg.knownHostsName(), strings.Join(h.cfg.HostKeyAlgorithms, ","), strings.Join(known, ","), hostForKeygen(h.cfg.knownHostsName()))
	}
	return algos, nil
}

// knownAlgorithms are the host key algorithms for the key types known_hosts
// records for this host; nil when it records none.
func (h *hostKeyChecker) knownAlgorithms() ([]string, error) {
	cb, err := h.db()
	if err != nil {
		return nil, err
	}
	probeKeyOnce.Do(func() {
		pub, _, _ := ed25519.GenerateKey(nil)
		probeKey, _ = ssh.NewPublicKey(pub)
	})
	err = cb(h.cfg.knownHostsName(), dummyAddr(h.addr), probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil, nil
	}
	var algos []string
	for _, k := range ke.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos, nil
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

type dummyAddr string

func (dummyAddr) Network() string  { return "tcp" }
func (a dummyAddr) String() string { return string(a) }

// check is the ssh.HostKeyCallback.
func (h *hostKeyChecker) check(_ string, _ net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	h.seen = key
	h.mu.Unlock()
	name := h.cfg.knownHostsName()
	if bits := rsaBits(key); bits > 0 && bits < h.cfg.RequiredRSASize {
		return fmt.Errorf("host key of %s (%s) is a %d-bit RSA key, smaller than RequiredRSASize %d", name, h.addr, bits, h.cfg.RequiredRSASize)
	}
	if cert, ok := key.(*ssh.Certificate); ok && h.cfg.CASignatureAlgorithms != nil && cert.Signature != nil &&
		!slices.Contains(h.cfg.CASignatureAlgorithms, cert.Signature.Format) {
		return fmt.Errorf("host certificate of %s (%s) is signed with %s, which CASignatureAlgorithms does not allow (%s)",
			name, h.addr, cert.Signature.Format, strings.Join(h.cfg.CASignatureAlgorithms, ","))
	}
	if h.cfg.ExpectHostKey != nil {
		if bytes.Equal(key.Marshal(), h.cfg.ExpectHostKey.Marshal()) {
			return nil
		}
		return &HostKeyError{Host: name, Addr: h.addr, Key: key, Expected: h.cfg.ExpectHostKey}
	}
	cb, err := h.db()
	if err != nil {
		return err
	}
	err = cb(name, dummyAddr(h.addr), key)
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return &HostKeyError{Host: name, Addr: h.addr, Key: key, Revoked: true, Files: h.files()}
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return &HostKeyError{Host: name, Addr: h.addr, Key: key, Known: ke.Want, Files: h.files()}
	case !errors.As(err, &ke):
		return fmt.Errorf("checking host key of %s: %w", name, err)
	}
	return h.unknown(name, key)
}

// unknown applies StrictHostKeyChecking to a key that is not in known_hosts.
func (h *hostKeyChecker) unknown(name string, key ssh.PublicKey) error {
	refuse := func(reason string) error {
		return &HostKeyError{Host: name, Addr: h.addr, Key: key, Files: h.cfg.UserKnownHostsFiles, Reason: reason}
	}
	if len(h.cfg.UserKnownHostsFiles) == 0 {
		return refuse("no UserKnownHostsFile to record it in")
	}
	file := h.cfg.UserKnownHostsFiles[0]
	switch h.cfg.StrictHostKeyChecking {
	case "yes":
		return refuse("StrictHostKeyChecking=yes refuses unknown hosts")
	case "ask":
		if h.prompt == nil || h.cfg.BatchMode {
			return refuse("no one was asked to confirm it (non-interactive)")
		}
		ok, err := h.prompt(HostKeyQuestion{Host: name, Addr: h.addr, Key: key, Fingerprint: ssh.FingerprintSHA256(key), File: file})
		if err != nil {
			return fmt.Errorf("asking about the host key of %s: %w", name, err)
		}
		if !ok {
			return refuse("it was declined at the prompt")
		}
	}
	if err := appendKnownHost(file, name, key, h.cfg.HashKnownHosts); err != nil {
		return fmt.Errorf("recording the host key of %s: %w", name, err)
	}
	return nil
}

// appendKnownHost adds one line to a known_hosts file, creating the file
// (0600) and its directory (0700) when needed.
func appendKnownHost(file, hostport string, key ssh.PublicKey, hash bool) error {
	host := knownhosts.Normalize(hostport)
	if hash {
		host = knownhosts.HashHostname(host)
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		last := make([]byte, 1)
		if r, err := os.Open(file); err == nil {
			if _, err := r.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
				line = "\n" + line
			}
			r.Close()
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return f.Close()
}
