package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// auth collects the credentials offered to one hop, in order: -i files,
// SSH_PRIVATE_KEY, agent keys, ssh_config identities, then the password.
// Explicit keys come first so that an agent full of keys does not exhaust
// the server's MaxAuthTries (nixos-anywhere #629).
type auth struct {
	cfg      *Config
	signers  []ssh.Signer
	sources  []string // human description per signer, for error messages
	notes    []string // identities that could not be used, and why
	password string   // empty when no password method may be offered
	agent    net.Conn

	given     ssh.PublicKey // the first key from -i or SSH_PRIVATE_KEY, if any
	givenFrom string

	mu     sync.Mutex
	method string // the method tried last: after success, the one that let us in
}

// Authentication methods, as SSH names them (RFC 4252).
const (
	AuthNone                = "none"
	AuthPublicKey           = "publickey"
	AuthPassword            = "password"
	AuthKeyboardInteractive = "keyboard-interactive"
)

// Login says how the server let a connection in and which key the user
// gave. The NixOS installer a kexec boots lets root in with the carried
// authorized keys only, never with a password: a run that got in with a
// password must authorize a key of its own before it kexecs.
type Login struct {
	// Method is the method that let the user in: AuthPublicKey,
	// AuthPassword, AuthKeyboardInteractive or AuthNone.
	Method string
	// GivenKey is the first key given with -i or SSH_PRIVATE_KEY that could
	// be loaded (nil when none), and GivenFrom says which ("-i PATH" or
	// SSH_PRIVATE_KEY). Every connection of the run offers it first.
	GivenKey  ssh.PublicKey
	GivenFrom string
}

func (a *auth) trying(method string) {
	a.mu.Lock()
	a.method = method
	a.mu.Unlock()
}

// login is how the finished handshake got in.
func (a *auth) login() Login {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := Login{Method: a.method, GivenKey: a.given, GivenFrom: a.givenFrom}
	if l.Method == "" {
		l.Method = AuthNone // no callback ran: the server took "none"
	}
	return l
}

func (a *auth) close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

func (a *auth) add(s ssh.Signer, source string) {
	blob := s.PublicKey().Marshal()
	for _, have := range a.signers {
		if bytes.Equal(have.PublicKey().Marshal(), blob) {
			return
		}
	}
	s, note := usableSigner(a.cfg, s, source)
	if s == nil {
		a.notes = append(a.notes, note)
		return
	}
	a.signers = append(a.signers, s)
	a.sources = append(a.sources, fmt.Sprintf("%s (%s)", source, keyString(s.PublicKey())))
}

// give records the first key the user gave explicitly.
func (a *auth) give(s ssh.Signer, source string) {
	if a.given == nil {
		a.given, a.givenFrom = s.PublicKey(), source
	}
}

// newAuth loads the keys for cfg. password is only set for the final target.
func newAuth(cfg *Config, o Options, password string) (*auth, error) {
	a := &auth{cfg: cfg}
	if password != "" {
		if cfg.offers(AuthPassword) || cfg.offers(AuthKeyboardInteractive) {
			a.password = password
		} else {
			a.notes = append(a.notes, "the password is not sent: PasswordAuthentication, KbdInteractiveAuthentication or PreferredAuthentications rule it out")
		}
	}
	if !cfg.offers(AuthPublicKey) {
		return a, nil
	}
	var files []fileKey
	for i, p := range cfg.IdentityFiles {
		explicit := i < cfg.explicitIdentities
		s, pub, err := loadIdentity(p)
		switch {
		case err == nil:
			files = append(files, fileKey{p, s, pub, explicit})
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			// ssh_config and default identities are optional.
		case errors.As(err, new(*ssh.PassphraseMissingError)):
			files = append(files, fileKey{p, nil, pub, explicit})
			a.notes = append(a.notes, fmt.Sprintf("identity %s is passphrase-protected; load it into ssh-agent (ssh-add %s)", p, p))
		default:
			return nil, fmt.Errorf("identity file %s: %w", p, err)
		}
	}
	for _, f := range files {
		if f.explicit && f.signer != nil {
			a.add(f.signer, "-i "+f.path)
			a.give(f.signer, "-i "+f.path)
		}
	}
	if len(o.PrivateKey) > 0 {
		s, err := ssh.ParsePrivateKey(o.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("%s: not a usable unencrypted private key: %w", EnvPrivateKey, err)
		}
		a.add(s, EnvPrivateKey)
		a.give(s, EnvPrivateKey)
	}
	if cfg.IdentityAgent != "" {
		conn, err := net.Dial("unix", cfg.IdentityAgent)
		if err != nil {
			a.notes = append(a.notes, fmt.Sprintf("ssh-agent at %s: %v", cfg.IdentityAgent, err))
		} else {
			a.agent = conn
			signers, err := agent.NewClient(conn).Signers()
			if err != nil {
				a.notes = append(a.notes, fmt.Sprintf("ssh-agent at %s: %v", cfg.IdentityAgent, err))
			}
			for _, s := range signers {
				if cfg.IdentitiesOnly && !matchesAny(s.PublicKey(), files) {
					continue
				}
				a.add(s, "agent")
			}
		}
	}
	for _, f := range files {
		if !f.explicit && f.signer != nil {
			a.add(f.signer, f.path)
		}
	}
	return a, nil
}

// fileKey is one identity file: its signer when it could be loaded, and its
// public key (also for passphrase-protected keys, to match the agent's copy).
type fileKey struct {
	path     string
	signer   ssh.Signer
	pub      ssh.PublicKey
	explicit bool
}

// matchesAny implements IdentitiesOnly: an agent key is used only when it
// belongs to one of the configured identity files.
func matchesAny(k ssh.PublicKey, files []fileKey) bool {
	blob := k.Marshal()
	for _, f := range files {
		if f.pub != nil && bytes.Equal(f.pub.Marshal(), blob) {
			return true
		}
	}
	return false
}

// loadIdentity reads a private key file. For a passphrase-protected key it
// still returns the public key (from the file or a .pub next to it) so the
// agent copy can be matched.
func loadIdentity(path string) (ssh.Signer, ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	if err == nil {
		return s, s.PublicKey(), nil
	}
	var pme *ssh.PassphraseMissingError
	if errors.As(err, &pme) {
		pub := pme.PublicKey
		if pub == nil {
			pub, _ = readPublicKey(path + ".pub")
		}
		return nil, pub, err
	}
	if pub, perr := readPublicKey(path); perr == nil {
		// A public key file: usable only through the agent.
		return nil, pub, &ssh.PassphraseMissingError{PublicKey: pub}
	}
	return nil, nil, err
}

func readPublicKey(path string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	return k, err
}

// methods builds the ssh.AuthMethods in offering order. Each records that
// it is being tried: x/crypto/ssh tries them one after the other and stops
// at the first success, so the last one tried is the one that got in.
// The order is PreferredAuthentications' (keys, then the password, by
// default), without the methods the configuration turns off.
func (a *auth) methods() []ssh.AuthMethod {
	var m []ssh.AuthMethod
	pw := a.password
	for _, name := range a.cfg.authOrder() {
		switch {
		case !a.cfg.offers(name):
		case name == AuthPublicKey && len(a.signers) > 0:
			signers := a.signers
			m = append(m, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
				a.trying(AuthPublicKey)
				return signers, nil
			}))
		case name == AuthPassword && pw != "":
			m = append(m, ssh.PasswordCallback(func() (string, error) {
				a.trying(AuthPassword)
				return pw, nil
			}))
		case name == AuthKeyboardInteractive && pw != "":
			m = append(m, ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				a.trying(AuthKeyboardInteractive)
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
		}
	}
	return m
}

// describe lists what was offered, for an authentication failure message.
func (a *auth) describe() string {
	var parts []string
	if len(a.sources) > 0 {
		parts = append(parts, "keys: "+strings.Join(a.sources, ", "))
	} else {
		parts = append(parts, "no keys")
	}
	if a.password != "" {
		parts = append(parts, "a password (SSHPASS)")
	}
	s := "offered " + strings.Join(parts, "; ")
	if len(a.notes) > 0 {
		s += "; " + strings.Join(a.notes, "; ")
	}
	return s
}
