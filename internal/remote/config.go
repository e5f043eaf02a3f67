package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
)

// Built-in defaults. Each one can be overridden with --ssh-option KEY=VALUE
// (nixos-anywhere's own defaults could not be, see its quirk list).
const (
	DefaultPort                = 22
	DefaultConnectTimeout      = 10 * time.Second
	DefaultServerAliveInterval = 15 * time.Second
	DefaultServerAliveCountMax = 3
)

// Options are the caller's choices for reaching a target: the CLI flags of
// nixos-anywhere (-p, -i, --ssh-option, --env-password) plus the environment
// and interactive hooks. The zero value reads ~/.ssh/config and
// /etc/ssh/ssh_config and uses no agent, no password and no prompts.
type Options struct {
	// UserConfigFile and SystemConfigFile are ssh_config files. Empty means
	// ~/.ssh/config and /etc/ssh/ssh_config; "none" skips the file.
	UserConfigFile   string
	SystemConfigFile string
	// Home replaces the home directory for "~" and default file names.
	Home string
	// LocalUser is the default remote user name (OpenSSH uses the local one).
	LocalUser string

	// SSHOptions are --ssh-option KEY=VALUE overrides; they beat the
	// destination, the flags and ssh_config. A later value for the same key
	// wins over an earlier one.
	SSHOptions []string
	// Port is -p/--ssh-port; a port in the destination takes precedence.
	Port int
	// IdentityFiles are -i files; they must exist and are offered first.
	IdentityFiles []string
	// PrivateKey is key material, e.g. from SSH_PRIVATE_KEY.
	PrivateKey []byte
	// Password is the login password (SSHPASS with --env-password). It is
	// offered to the final target only, never to jump hosts.
	Password string
	// AgentSocket is the ssh-agent socket (SSH_AUTH_SOCK); empty means no agent.
	AgentSocket string

	// AcceptNewHostKey records an unknown host key in known_hosts instead of
	// refusing it (StrictHostKeyChecking=accept-new). A changed key is
	// always refused.
	AcceptNewHostKey bool
	// HostKeyPrompt is asked about an unknown host key when
	// StrictHostKeyChecking is "ask" (the default); true accepts and records it.
	HostKeyPrompt func(HostKeyQuestion) (bool, error)
	// ExpectHostKey pins the final target's host key: only this exact key is
	// accepted and known_hosts is not consulted. The installer uses it to
	// check that the machine after kexec or reboot is the one it talked to.
	ExpectHostKey ssh.PublicKey

	// SudoPassword is fed to `sudo -S` on stdin when sudo asks for one
	// (e.g. from SUDO_PASSWORD). SudoPasswordPrompt is asked when it is empty.
	SudoPassword       string
	SudoPasswordPrompt func(user, host string) (string, error)

	// Logger receives progress at Info and commands at Debug; nil discards.
	// Secrets are never logged.
	Logger *slog.Logger
}

// Environment variables read by FromEnv; the names are nixos-anywhere's.
const (
	EnvAgentSocket  = "SSH_AUTH_SOCK"
	EnvPrivateKey   = "SSH_PRIVATE_KEY"
	EnvPassword     = "SSHPASS"
	EnvSudoPassword = "SUDO_PASSWORD"
)

// FromEnv fills the options that come from the environment. The SSHPASS
// password is only used when envPassword (--env-password) is set, as in
// nixos-anywhere.
func (o *Options) FromEnv(getenv func(string) string, envPassword bool) {
	if o.AgentSocket == "" {
		o.AgentSocket = getenv(EnvAgentSocket)
	}
	if len(o.PrivateKey) == 0 {
		if k := getenv(EnvPrivateKey); k != "" {
			o.PrivateKey = []byte(k)
		}
	}
	if envPassword && o.Password == "" {
		o.Password = getenv(EnvPassword)
	}
	if o.SudoPassword == "" {
		o.SudoPassword = getenv(EnvSudoPassword)
	}
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Config is the effective configuration for one host, like `ssh -G`: the
// result of the destination, flags, --ssh-option, ssh_config and defaults.
type Config struct {
	Alias                  string // the host as the user wrote it (ssh_config Host match)
	HostName               string
	Port                   int
	User                   string
	IdentityFiles          []string // in the order they are offered
	IdentitiesOnly         bool
	IdentityAgent          string    // socket path; "" for none
	ProxyJump              []*Config // outermost first; a jump host's own ProxyJump is not followed
	UserKnownHostsFiles    []string  // the first one receives new keys
	GlobalKnownHostsFiles  []string
	StrictHostKeyChecking  string // yes, accept-new, no or ask
	HostKeyAlias           string
	HashKnownHosts         bool
	ConnectTimeout         time.Duration
	ConnectionAttempts     int
	Network                string        // "tcp", "tcp4" or "tcp6" (AddressFamily)
	ServerAliveInterval    time.Duration // 0 disables keepalives
	ServerAliveCountMax    int
	BatchMode              bool
	PasswordAuthentication bool
	KbdInteractive         bool // KbdInteractiveAuthentication
	PubkeyAuthentication   bool
	ExpectHostKey          ssh.PublicKey // pinned key, final target only

	// PreferredAuthentications are the methods offered, in order: publickey,
	// password, keyboard-interactive; nil offers all three in that order.
	PreferredAuthentications []string
	// Algorithm lists; nil means golang.org/x/crypto/ssh's defaults.
	KexAlgorithms, Ciphers, MACs, HostKeyAlgorithms []string
	PubkeyAcceptedAlgorithms, CASignatureAlgorithms []string
	// RequiredRSASize is the smallest RSA key accepted, in bits; 0 leaves
	// it to x/crypto.
	RequiredRSASize int
	// Ignored are the ssh_config options set for this host that have no
	// effect here, each with the reason; logged with --debug.
	Ignored []string

	explicitIdentities int // the first n IdentityFiles came from -i
}

// Addr is the host:port dialled.
func (c *Config) Addr() string { return joinHostPort(c.HostName, c.Port) }

// Destination is user@host:port for messages.
func (c *Config) Destination() string {
	return c.User + "@" + c.Addr()
}

// knownHostsName is the name looked up in known_hosts ([host]:port unless 22).
func (c *Config) knownHostsName() string {
	h := c.HostName
	if c.HostKeyAlias != "" {
		h = c.HostKeyAlias
	}
	return joinHostPort(h, c.Port)
}

// lookup answers "what is KEY for this alias" with the precedence
// --ssh-option > explicit values > ssh_config files > defaults.
type lookup struct {
	alias    string
	over     map[string][]string
	files    []*ssh_config.Config
	names    []string
	explicit map[string]string
}

func (l *lookup) get(key string) (string, error) {
	lk := strings.ToLower(key)
	if v, ok := l.over[lk]; ok {
		return v[len(v)-1], nil
	}
	if v, ok := l.explicit[lk]; ok {
		return v, nil
	}
	for i, f := range l.files {
		v, err := f.Get(l.alias, key)
		if err != nil {
			return "", fmt.Errorf("ssh_config %s: %s for host %q: %w", l.names[i], key, l.alias, err)
		}
		if v != "" {
			return unquote(v), nil
		}
	}
	return "", nil
}

func (l *lookup) all(key string) ([]string, error) {
	out := slices.Clone(l.over[strings.ToLower(key)])
	for i, f := range l.files {
		vs, err := f.GetAll(l.alias, key)
		if err != nil {
			return nil, fmt.Errorf("ssh_config %s: %s for host %q: %w", l.names[i], key, l.alias, err)
		}
		for _, v := range vs {
			out = append(out, unquote(v))
		}
	}
	return out, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// Resolve computes the effective configuration for t, including the jump
// hosts named by ProxyJump (each resolved through ssh_config in turn).
func Resolve(t Target, o Options) (*Config, error) {
	files, names, err := loadConfigFiles(o)
	if err != nil {
		return nil, err
	}
	over, _, err := parseSSHOptions(o.SSHOptions)
	if err != nil {
		return nil, err
	}
	for _, f := range o.IdentityFiles {
		if _, err := os.Stat(expandHome(f, o.home())); err != nil {
			return nil, fmt.Errorf("identity file %s (-i): %w", f, err)
		}
	}
	c, err := resolve(t, o, files, names, over, true)
	if err != nil {
		return nil, err
	}
	for _, hop := range append(slices.Clone(c.ProxyJump), c) {
		for _, note := range hop.Ignored {
			o.logger().Debug(note, "host", hop.Alias)
		}
	}
	return c, nil
}

func resolve(t Target, o Options, files []*ssh_config.Config, names []string, over map[string][]string, final bool) (*Config, error) {
	explicit := map[string]string{}
	if t.User != "" {
		explicit["user"] = t.User
	}
	switch {
	case t.Port != 0:
		explicit["port"] = strconv.Itoa(t.Port)
	case final && o.Port != 0:
		explicit["port"] = strconv.Itoa(o.Port)
	}
	l := &lookup{alias: t.Host, over: over, files: files, names: names, explicit: explicit}
	if !final {
		l.over = map[string][]string{}
		for k, v := range over {
			if sshOptions[k].jump {
				l.over[k] = v
			}
		}
	}
	c := &Config{Alias: t.Host}
	home := o.home()
	var err error
	str := func(key, def string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = l.get(key)
		if v == "" {
			return def
		}
		return v
	}
	boolean := func(key string, def bool) bool {
		v := str(key, "")
		if v == "" || err != nil {
			return def
		}
		b, ok := parseYesNo(v)
		if !ok {
			err = fmt.Errorf("%s %q for host %q: want yes or no", key, v, t.Host)
		}
		return b
	}
	// alias reads an option that has an older spelling as well.
	alias := func(key, old string) string {
		if v := str(key, ""); v != "" || err != nil {
			return v
		}
		return str(old, "")
	}
	count := func(key string, def, minimum int) int {
		v := str(key, "")
		if v == "" || err != nil {
			return def
		}
		n, perr := strconv.Atoi(v)
		if perr != nil || n < minimum {
			err = fmt.Errorf("%s %q for host %q: want a number, at least %d", key, v, t.Host, minimum)
		}
		return n
	}
	list := func(key, spec string) []string {
		if err != nil {
			return nil
		}
		var algos []string
		if algos, err = algorithms(key, spec); err != nil {
			err = fmt.Errorf("host %q: %w", t.Host, err)
		}
		return algos
	}
	seconds := func(key string, def time.Duration) time.Duration {
		v := str(key, "")
		if v == "" || err != nil {
			return def
		}
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			err = fmt.Errorf("%s %q for host %q: want a number of seconds", key, v, t.Host)
		}
		return time.Duration(n) * time.Second
	}

	c.HostName = str("HostName", t.Host)
	port := str("Port", strconv.Itoa(DefaultPort))
	c.User = str("User", o.localUser())
	c.IdentitiesOnly = boolean("IdentitiesOnly", false)
	c.StrictHostKeyChecking = strings.ToLower(str("StrictHostKeyChecking", "ask"))
	c.HostKeyAlias = str("HostKeyAlias", "")
	c.HashKnownHosts = boolean("HashKnownHosts", false)
	c.ConnectTimeout = seconds("ConnectTimeout", DefaultConnectTimeout)
	c.ConnectionAttempts = count("ConnectionAttempts", 1, 1)
	family := strings.ToLower(str("AddressFamily", "any"))
	c.ServerAliveInterval = seconds("ServerAliveInterval", DefaultServerAliveInterval)
	c.ServerAliveCountMax = count("ServerAliveCountMax", DefaultServerAliveCountMax, 1)
	c.BatchMode = boolean("BatchMode", false)
	c.PasswordAuthentication = boolean("PasswordAuthentication", true)
	kbd := alias("KbdInteractiveAuthentication", "ChallengeResponseAuthentication")
	pubkey := str("PubkeyAuthentication", "yes")
	preferred := str("PreferredAuthentications", "")
	c.KexAlgorithms = list("KexAlgorithms", str("KexAlgorithms", ""))
	c.Ciphers = list("Ciphers", str("Ciphers", ""))
	c.MACs = list("MACs", str("MACs", ""))
	c.HostKeyAlgorithms = list("HostKeyAlgorithms", str("HostKeyAlgorithms", ""))
	c.PubkeyAcceptedAlgorithms = list("PubkeyAcceptedAlgorithms", alias("PubkeyAcceptedAlgorithms", "PubkeyAcceptedKeyTypes"))
	c.CASignatureAlgorithms = list("CASignatureAlgorithms", str("CASignatureAlgorithms", ""))
	c.RequiredRSASize = count("RequiredRSASize", 0, 1024)
	agent := str("IdentityAgent", "")
	userKH := str("UserKnownHostsFile", "~/.ssh/known_hosts ~/.ssh/known_hosts2")
	globalKH := str("GlobalKnownHostsFile", "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2")
	jump := str("ProxyJump", "")
	if err != nil {
		return nil, err
	}
	if err := l.unusable(c, jump != "" && !strings.EqualFold(jump, "none")); err != nil {
		return nil, err
	}
	if c.Port, err = parsePort(port); err != nil {
		return nil, fmt.Errorf("host %q: %w", t.Host, err)
	}
	switch family {
	case "any":
		c.Network = "tcp"
	case "inet":
		c.Network = "tcp4"
	case "inet6":
		c.Network = "tcp6"
	default:
		return nil, fmt.Errorf("AddressFamily %q for host %q: want any, inet or inet6", family, t.Host)
	}
	c.KbdInteractive = true
	if kbd != "" {
		var ok bool
		if c.KbdInteractive, ok = parseYesNo(kbd); !ok {
			return nil, fmt.Errorf("KbdInteractiveAuthentication %q for host %q: want yes or no", kbd, t.Host)
		}
	}
	switch strings.ToLower(pubkey) {
	case "yes", "true", "unbound", "host-bound":
		c.PubkeyAuthentication = true
	case "no", "false":
	default:
		return nil, fmt.Errorf("PubkeyAuthentication %q for host %q: want yes or no", pubkey, t.Host)
	}
	if preferred != "" {
		for _, m := range strings.Split(preferred, ",") {
			m = strings.ToLower(strings.TrimSpace(m))
			if slices.Contains(authMethodNames, m) && !slices.Contains(c.PreferredAuthentications, m) {
				c.PreferredAuthentications = append(c.PreferredAuthentications, m)
			}
		}
		if len(c.PreferredAuthentications) == 0 {
			return nil, fmt.Errorf("PreferredAuthentications %q for host %q: names none of the methods the built-in client offers (%s)",
				preferred, t.Host, strings.Join(authMethodNames, ", "))
		}
	}
	switch c.StrictHostKeyChecking {
	case "yes", "ask", "accept-new":
	case "no", "off":
		// Without a prompt, "no" still records unknown keys and refuses
		// changed ones: host keys are never ignored.
		c.StrictHostKeyChecking = "no"
	default:
		return nil, fmt.Errorf("StrictHostKeyChecking %q for host %q: want yes, accept-new, no or ask", c.StrictHostKeyChecking, t.Host)
	}
	if o.AcceptNewHostKey && c.StrictHostKeyChecking == "ask" {
		c.StrictHostKeyChecking = "accept-new"
	}

	tok := tokens{home: home, local: o.localUser(), host: c.HostName, port: c.Port, user: c.User, alias: t.Host}
	c.HostName = tok.expand(c.HostName)
	tok.host = c.HostName

	// Identities: -i first, then --ssh-option and ssh_config, then the
	// OpenSSH default names when nothing was configured.
	for _, f := range o.IdentityFiles {
		c.IdentityFiles = append(c.IdentityFiles, tok.path(f))
	}
	c.explicitIdentities = len(c.IdentityFiles)
	cfgIDs, err := l.all("IdentityFile")
	if err != nil {
		return nil, err
	}
	for _, f := range cfgIDs {
		c.IdentityFiles = append(c.IdentityFiles, tok.path(f))
	}
	if len(c.IdentityFiles) == 0 {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			c.IdentityFiles = append(c.IdentityFiles, filepath.Join(home, ".ssh", n))
		}
	}
	c.IdentityFiles = slices.Compact(c.IdentityFiles)

	switch {
	case strings.EqualFold(agent, "none"):
	case agent == "SSH_AUTH_SOCK" || agent == "":
		c.IdentityAgent = o.AgentSocket
	default:
		c.IdentityAgent = tok.path(agent)
	}
	c.UserKnownHostsFiles = knownHostsFiles(userKH, tok)
	c.GlobalKnownHostsFiles = knownHostsFiles(globalKH, tok)
	if final {
		c.ExpectHostKey = o.ExpectHostKey
	}
	if final && jump != "" && !strings.EqualFold(jump, "none") {
		for _, hop := range strings.Split(jump, ",") {
			jt, err := ParseTarget(strings.TrimSpace(hop))
			if err != nil {
				return nil, fmt.Errorf("ProxyJump for host %q: %w", t.Host, err)
			}
			jc, err := resolve(jt, o, files, names, over, false)
			if err != nil {
				return nil, fmt.Errorf("ProxyJump %s: %w", hop, err)
			}
			c.ProxyJump = append(c.ProxyJump, jc)
		}
	}
	return c, nil
}

// knownHostsFiles splits a known_hosts file list; "none" (OpenSSH's way of
// saying "no file") becomes /dev/null, which reads as empty and records
// nothing.
func knownHostsFiles(v string, tok tokens) []string {
	var out []string
	for _, f := range strings.Fields(v) {
		if strings.EqualFold(f, "none") {
			f = os.DevNull
		}
		out = append(out, tok.path(f))
	}
	return out
}

// unusable applies the ignored and refused rows of sshOptions to what
// ssh_config (or a --ssh-option "none") sets for this host: a refused option
// is an error, an ignored one is noted in c.Ignored. ProxyCommand is
// overridden by a ProxyJump, as the built-in client follows that instead.
func (l *lookup) unusable(c *Config, proxyJump bool) error {
	keys := slices.Sorted(maps.Keys(sshOptions))
	for _, k := range keys {
		opt := sshOptions[k]
		if opt.use == honoured {
			continue
		}
		v, err := l.get(opt.name)
		if err != nil {
			return err
		}
		switch {
		case v == "":
		case opt.use == ignored:
			c.Ignored = append(c.Ignored, fmt.Sprintf("ssh_config %s has no effect: %s", opt.name, opt.why))
		case strings.EqualFold(v, "none") || (k == "proxycommand" && proxyJump):
		default:
			return fmt.Errorf("host %q: ssh_config sets %s, which is not supported: %s", l.alias, opt.name, opt.why)
		}
	}
	return nil
}

func parseYesNo(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}

func (o *Options) home() string {
	if o.Home != "" {
		return o.Home
	}
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return "/"
}

func (o *Options) localUser() string {
	if o.LocalUser != "" {
		return o.LocalUser
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// loadConfigFiles parses the user and system ssh_config; a missing file is
// fine, a broken one is an error naming it.
func loadConfigFiles(o Options) ([]*ssh_config.Config, []string, error) {
	userFile := o.UserConfigFile
	if userFile == "" {
		userFile = filepath.Join(o.home(), ".ssh", "config")
	}
	sysFile := o.SystemConfigFile
	if sysFile == "" {
		sysFile = "/etc/ssh/ssh_config"
	}
	var cfgs []*ssh_config.Config
	var names []string
	for _, f := range []string{userFile, sysFile} {
		if f == "none" {
			continue
		}
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading ssh_config %s: %w", f, err)
		}
		c, err := ssh_config.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, nil, fmt.Errorf("parsing ssh_config %s: %w (fix the file, or pass a different one)", f, err)
		}
		cfgs = append(cfgs, c)
		names = append(names, f)
	}
	return cfgs, names, nil
}

// tokens expands the OpenSSH percent tokens and "~" in file names.
type tokens struct {
	home, local, host, user, alias string
	port                           int
}

func (t tokens) expand(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(t.home)
		case 'u':
			b.WriteString(t.local)
		case 'h':
			b.WriteString(t.host)
		case 'p':
			b.WriteString(strconv.Itoa(t.port))
		case 'r':
			b.WriteString(t.user)
		case 'n':
			b.WriteString(t.alias)
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func (t tokens) path(s string) string { return expandHome(t.expand(s), t.home) }

func expandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}
