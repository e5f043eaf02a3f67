package remote

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestSSHOptionTable keeps the classification consistent: keys are the
// lower-case names, every ignored or refused option says why, aliases point
// at honoured options.
func TestSSHOptionTable(t *testing.T) {
	for k, o := range sshOptions {
		if k != strings.ToLower(o.name) {
			t.Errorf("key %q for %s: want %q", k, o.name, strings.ToLower(o.name))
		}
		if o.use != honoured && o.why == "" {
			t.Errorf("%s is ignored or refused without a reason", o.name)
		}
		if o.alias != "" {
			if a, ok := sshOptions[o.alias]; !ok || a.use != honoured || a.alias != "" {
				t.Errorf("%s is an alias of %q, which is not an honoured option", o.name, o.alias)
			}
		}
		if o.jump && o.use == ignored {
			t.Errorf("%s is ignored but marked as applying to jump hosts", o.name)
		}
	}
}

// TestHonouredOptionsTakeEffect sets every honoured option and checks the
// resolved configuration changed, so that no option is listed as honoured
// without code behind it.
func TestHonouredOptionsTakeEffect(t *testing.T) {
	checks := map[string]struct {
		value string
		ok    func(c *Config) bool
	}{
		"addressfamily":                   {"inet6", func(c *Config) bool { return c.Network == "tcp6" }},
		"batchmode":                       {"yes", func(c *Config) bool { return c.BatchMode }},
		"casignaturealgorithms":           {"ssh-ed25519", func(c *Config) bool { return reflect.DeepEqual(c.CASignatureAlgorithms, []string{"ssh-ed25519"}) }},
		"challengeresponseauthentication": {"no", func(c *Config) bool { return !c.KbdInteractive }},
		"ciphers":                         {"aes256-ctr", func(c *Config) bool { return reflect.DeepEqual(c.Ciphers, []string{"aes256-ctr"}) }},
		"connectionattempts":              {"4", func(c *Config) bool { return c.ConnectionAttempts == 4 }},
		"connecttimeout":                  {"7", func(c *Config) bool { return c.ConnectTimeout == 7*time.Second }},
		"globalknownhostsfile":            {"/g", func(c *Config) bool { return reflect.DeepEqual(c.GlobalKnownHostsFiles, []string{"/g"}) }},
		"hashknownhosts":                  {"yes", func(c *Config) bool { return c.HashKnownHosts }},
		"hostkeyalgorithms":               {"ssh-ed25519", func(c *Config) bool { return reflect.DeepEqual(c.HostKeyAlgorithms, []string{"ssh-ed25519"}) }},
		"hostkeyalias":                    {"alias", func(c *Config) bool { return strings.HasPrefix(c.knownHostsName(), "alias") }},
		"hostname":                        {"192.0.2.9", func(c *Config) bool { return c.HostName == "192.0.2.9" }},
		"identitiesonly":                  {"yes", func(c *Config) bool { return c.IdentitiesOnly }},
		"identityagent":                   {"/agent", func(c *Config) bool { return c.IdentityAgent == "/agent" }},
		"identityfile":                    {"/k", func(c *Config) bool { return c.IdentityFiles[0] == "/k" }},
		"kbdinteractiveauthentication":    {"no", func(c *Config) bool { return !c.KbdInteractive }},
		"kexalgorithms":                   {"curve25519-sha256", func(c *Config) bool { return reflect.DeepEqual(c.KexAlgorithms, []string{"curve25519-sha256"}) }},
		"macs":                            {"hmac-sha2-512", func(c *Config) bool { return reflect.DeepEqual(c.MACs, []string{"hmac-sha2-512"}) }},
		"passwordauthentication":          {"no", func(c *Config) bool { return !c.PasswordAuthentication }},
		"port":                            {"2222", func(c *Config) bool { return c.Port == 2222 }},
		"preferredauthentications":        {"password", func(c *Config) bool { return reflect.DeepEqual(c.PreferredAuthentications, []string{"password"}) }},
		"proxyjump":                       {"jump", func(c *Config) bool { return len(c.ProxyJump) == 1 }},
		"pubkeyacceptedalgorithms":        {"ssh-ed25519", func(c *Config) bool { return reflect.DeepEqual(c.PubkeyAcceptedAlgorithms, []string{"ssh-ed25519"}) }},
		"pubkeyacceptedkeytypes":          {"ssh-ed25519", func(c *Config) bool { return reflect.DeepEqual(c.PubkeyAcceptedAlgorithms, []string{"ssh-ed25519"}) }},
		"pubkeyauthentication":            {"no", func(c *Config) bool { return !c.PubkeyAuthentication }},
		"requiredrsasize":                 {"3072", func(c *Config) bool { return c.RequiredRSASize == 3072 }},
		"serveralivecountmax":             {"9", func(c *Config) bool { return c.ServerAliveCountMax == 9 }},
		"serveraliveinterval":             {"0", func(c *Config) bool { return c.ServerAliveInterval == 0 }},
		"stricthostkeychecking":           {"yes", func(c *Config) bool { return c.StrictHostKeyChecking == "yes" }},
		"user":                            {"carol", func(c *Config) bool { return c.User == "carol" }},
		"userknownhostsfile":              {"none", func(c *Config) bool { return reflect.DeepEqual(c.UserKnownHostsFiles, []string{"/dev/null"}) }},
	}
	for k, o := range sshOptions {
		if o.use != honoured {
			continue
		}
		tc, ok := checks[k]
		if !ok {
			t.Errorf("%s is honoured but has no check here", o.name)
			continue
		}
		opts := Options{UserConfigFile: "none", SystemConfigFile: "none", Home: t.TempDir(), LocalUser: "local",
			SSHOptions: []string{o.name + "=" + tc.value}}
		c, err := Resolve(Target{Host: "h"}, opts)
		if err != nil {
			t.Errorf("%s=%s: %v", o.name, tc.value, err)
			continue
		}
		if !tc.ok(c) {
			t.Errorf("%s=%s had no effect on %+v", o.name, tc.value, c)
		}
	}
}

func TestParseSSHOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []string
		want     map[string][]string
		warnings []string
		err      string
	}{
		{"honoured, any case", []string{"stricthostkeychecking=no", "CONNECTTIMEOUT 5"},
			map[string][]string{"stricthostkeychecking": {"no"}, "connecttimeout": {"5"}}, nil, ""},
		{"old spelling lands on the new name", []string{"PubkeyAcceptedKeyTypes=+ssh-rsa"},
			map[string][]string{"pubkeyacceptedalgorithms": {"+ssh-rsa"}}, nil, ""},
		{"ignored options warn once each, any case", []string{"LogLevel=ERROR", "loglevel=QUIET", "ControlMaster=auto", "ControlPath=/tmp/%C", "ControlPersist 60"},
			map[string][]string{}, []string{
				"--ssh-option LogLevel has no effect: " + whyLog,
				"--ssh-option ControlMaster has no effect: " + whyMux,
				"--ssh-option ControlPath has no effect: " + whyMux,
				"--ssh-option ControlPersist has no effect: " + whyMux,
			}, ""},
		{"habits from nixos-anywhere users", []string{"ForwardAgent=yes", "Compression=yes", "TCPKeepAlive=yes", "SetEnv=TERM=xterm", "ServerAliveCountMax=5"},
			map[string][]string{"serveralivecountmax": {"5"}}, []string{
				"--ssh-option ForwardAgent has no effect: ssh-agent is never forwarded: nothing on the target needs it",
				"--ssh-option Compression has no effect: golang.org/x/crypto/ssh does not implement compression",
				"--ssh-option TCPKeepAlive has no effect: TCP keepalives are always on, and ServerAliveInterval detects a dead target",
				"--ssh-option SetEnv has no effect: no environment variables are sent; remote commands get what they need on their command line",
			}, ""},
		{"refused", []string{"ProxyCommand=nc %h %p"}, nil, nil, "ProxyCommand is not supported: " + whyCommands + "; use ProxyJump"},
		{"refused, any case", []string{"knownhostscommand=/bin/true"}, nil, nil, "KnownHostsCommand is not supported"},
		{"refused unless none", []string{"ProxyCommand=none", "RevokedHostKeys none"},
			map[string][]string{"proxycommand": {"none"}, "revokedhostkeys": {"none"}}, nil, ""},
		{"ssh_config structure", []string{"Host=x"}, nil, nil, "pass --ssh-config FILE"},
		{"not an OpenSSH option", []string{"NoSuchOption=1"}, nil, nil, "NoSuchOption is not an OpenSSH client option"},
		{"malformed", []string{"Port"}, nil, nil, "want KEY=VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings, err := parseSSHOptions(tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseSSHOptions(%q) = %v, want an error containing %q", tc.opts, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(warnings, tc.warnings) {
				t.Errorf("parseSSHOptions(%q) =\n  %v\n  %q\n  %v\nwant\n  %v\n  %q", tc.opts, got, warnings, err, tc.want, tc.warnings)
			}
		})
	}
}

func TestCheckSSHOptions(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		err  string
	}{
		{[]string{"AddressFamily=inet", "ConnectionAttempts=3", "LogLevel=ERROR"}, ""},
		{[]string{"AddressFamily=ipx"}, `--ssh-option: AddressFamily "ipx" for host "box": want any, inet or inet6`},
		{[]string{"ConnectionAttempts=0"}, "ConnectionAttempts \"0\""},
		{[]string{"Port=abc"}, `port "abc"`},
		{[]string{"RequiredRSASize=512"}, "at least 1024"},
		{[]string{"KexAlgorithms=sntrup761x25519-sha512@openssh.com"}, "leaves no algorithm the built-in client implements"},
		{[]string{"PreferredAuthentications=gssapi-with-mic,hostbased"}, "names none of the methods"},
		{[]string{"ProxyJump=@x"}, "ProxyJump for host"},
		{[]string{"ControlMaster=auto", "BindAddress=10.0.0.1"}, "BindAddress is not supported"},
	} {
		warnings, err := CheckSSHOptions(tc.opts, "box")
		if tc.err == "" {
			if err != nil || len(warnings) != 1 {
				t.Errorf("CheckSSHOptions(%q) = %q, %v; want one warning", tc.opts, warnings, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("CheckSSHOptions(%q) = %v, want an error containing %q", tc.opts, err, tc.err)
		}
	}
}

// TestSSHConfigSameRules: ssh_config entries follow the table too; ignored
// ones are noted (not warned about: Debian's own system file sets some),
// refused ones are errors unless --ssh-option turns them off.
func TestSSHConfigSameRules(t *testing.T) {
	cfg := writeConfig(t, `
Host mux
  ControlMaster auto
  ControlPath ~/.ssh/cm-%C
  LogLevel QUIET
  ForwardAgent yes
  ConnectionAttempts 3
  AddressFamily inet

Host pc
  ProxyCommand nc %h %p

Host pcjump
  ProxyJump bastion
  ProxyCommand nc %h %p

Host khc
  KnownHostsCommand /usr/bin/fetch-keys %H

Host revoked
  RevokedHostKeys ~/.ssh/revoked

Host hardened
  KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
  Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
  MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
  HostKeyAlgorithms -ssh-rsa*,ecdsa-*
  PubkeyAcceptedKeyTypes +ssh-rsa
  RequiredRSASize 3072
`)
	debian := writeConfig(t, `
Host *
    SendEnv LANG LC_*
    HashKnownHosts yes
    GSSAPIAuthentication yes
`)
	for _, tc := range []struct {
		host    string
		ssh     []string
		ignored []string
		err     string
		check   func(*Config) bool
	}{
		{host: "mux", ignored: []string{"ControlMaster", "ControlPath", "ForwardAgent", "GSSAPIAuthentication", "LogLevel", "SendEnv"},
			check: func(c *Config) bool { return c.ConnectionAttempts == 3 && c.Network == "tcp4" && c.HashKnownHosts }},
		{host: "pc", err: `host "pc": ssh_config sets ProxyCommand, which is not supported: ` + whyCommands},
		{host: "pc", ssh: []string{"proxycommand=none"}, ignored: []string{"GSSAPIAuthentication", "SendEnv"}},
		{host: "pc", ssh: []string{"ProxyJump=jump"}, ignored: []string{"GSSAPIAuthentication", "SendEnv"}},
		{host: "pcjump", ignored: []string{"GSSAPIAuthentication", "SendEnv"}},
		{host: "khc", err: "ssh_config sets KnownHostsCommand"},
		{host: "revoked", err: "@revoked in known_hosts"},
		{host: "hardened", ignored: []string{"GSSAPIAuthentication", "SendEnv"}, check: func(c *Config) bool {
			return reflect.DeepEqual(c.KexAlgorithms, []string{"curve25519-sha256"}) &&
				reflect.DeepEqual(c.Ciphers, []string{"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"}) &&
				!slices.Contains(c.HostKeyAlgorithms, "ssh-rsa") && !slices.ContainsFunc(c.HostKeyAlgorithms, func(a string) bool { return strings.HasPrefix(a, "ecdsa") }) &&
				slices.Contains(c.HostKeyAlgorithms, "ssh-ed25519") &&
				slices.Contains(c.PubkeyAcceptedAlgorithms, "ssh-rsa") && c.RequiredRSASize == 3072
		}},
	} {
		t.Run(tc.host+strings.Join(tc.ssh, ","), func(t *testing.T) {
			o := Options{UserConfigFile: cfg, SystemConfigFile: debian, Home: t.TempDir(), LocalUser: "local", SSHOptions: tc.ssh}
			c, err := Resolve(Target{Host: tc.host}, o)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Resolve(%s) = %v, want an error containing %q", tc.host, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%s) = %v", tc.host, err)
			}
			var ignored []string
			for _, n := range c.Ignored {
				name, _, _ := strings.Cut(strings.TrimPrefix(n, "ssh_config "), " ")
				ignored = append(ignored, name)
				if !strings.Contains(n, "has no effect: ") {
					t.Errorf("note %q does not say why", n)
				}
			}
			if !reflect.DeepEqual(ignored, tc.ignored) {
				t.Errorf("Ignored = %q, want %q", ignored, tc.ignored)
			}
			if tc.check != nil && !tc.check(c) {
				t.Errorf("config = %+v", c)
			}
		})
	}
}

func TestAlgorithmList(t *testing.T) {
	defaults := []string{"a1", "a2", "b1"}
	all := []string{"a1", "a2", "b1", "old1", "old2"}
	for _, tc := range []struct {
		spec string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"b1,a1", []string{"b1", "a1"}, ""},
		{"b1,new-from-openssh,a1", []string{"b1", "a1"}, ""},
		{"+old1", []string{"a1", "a2", "b1", "old1"}, ""},
		{"+old*", []string{"a1", "a2", "b1", "old1", "old2"}, ""},
		{"-a*", []string{"b1"}, ""},
		{"^old2,b1", []string{"old2", "b1", "a1", "a2"}, ""},
		{"?1", []string{"a1", "b1"}, ""},
		{"unknown", nil, `Ciphers "unknown" leaves no algorithm`},
		{"-*", nil, "leaves no algorithm"},
	} {
		got, err := algorithmList("Ciphers", tc.spec, defaults, all)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("algorithmList(%q) = %v, want an error containing %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("algorithmList(%q) = %q, %v; want %q", tc.spec, got, err, tc.want)
		}
	}
	// The real lists: "+" reaches x/crypto's insecure algorithms.
	got, err := algorithms("HostKeyAlgorithms", "+ssh-rsa")
	if err != nil || got[len(got)-1] != "ssh-rsa" || slices.Contains(ssh.SupportedAlgorithms().HostKeys, "ssh-rsa") {
		t.Errorf(`algorithms(HostKeyAlgorithms, "+ssh-rsa") = %q, %v; want the defaults, then ssh-rsa`, got, err)
	}
}

func TestUsableSigner(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, _ := ssh.NewSignerFromKey(rsaKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edSigner, _ := ssh.NewSignerFromKey(edKey)
	for _, tc := range []struct {
		name   string
		cfg    Config
		signer ssh.Signer
		algos  []string // nil: the signer is refused
		note   string
	}{
		{"no restriction", Config{}, rsaSigner, []string{"rsa-sha2-256", "rsa-sha2-512", "ssh-rsa"}, ""},
		{"RSA narrowed to SHA-512", Config{PubkeyAcceptedAlgorithms: []string{"ssh-ed25519", "rsa-sha2-512"}}, rsaSigner, []string{"rsa-sha2-512"}, ""},
		{"ed25519 not listed", Config{PubkeyAcceptedAlgorithms: []string{"rsa-sha2-512"}}, edSigner, nil, "PubkeyAcceptedAlgorithms does not list ssh-ed25519"},
		{"RSA below RequiredRSASize", Config{RequiredRSASize: 2048}, rsaSigner, nil, "1024-bit RSA, below RequiredRSASize 2048"},
		{"RequiredRSASize leaves other keys alone", Config{RequiredRSASize: 4096}, edSigner, []string{"ssh-ed25519"}, ""},
	} {
		s, note := usableSigner(&tc.cfg, tc.signer, "-i key")
		if tc.algos == nil {
			if s != nil || !strings.Contains(note, tc.note) {
				t.Errorf("%s: usableSigner = %v, %q; want nil and a note containing %q", tc.name, s, note, tc.note)
			}
			continue
		}
		got := []string{s.PublicKey().Type()}
		if ms, ok := s.(ssh.MultiAlgorithmSigner); ok {
			got = ms.Algorithms()
		} else if s.PublicKey().Type() == ssh.KeyAlgoRSA {
			got = []string{"rsa-sha2-256", "rsa-sha2-512", "ssh-rsa"}
		}
		if s == nil || !reflect.DeepEqual(got, tc.algos) {
			t.Errorf("%s: usableSigner offers %q (%q), want %q", tc.name, got, note, tc.algos)
		}
	}
}

func TestAuthOrder(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{PubkeyAuthentication: true, PasswordAuthentication: true, KbdInteractive: true}, authMethodNames},
		{Config{PubkeyAuthentication: true, PasswordAuthentication: true, KbdInteractive: false}, []string{"publickey", "password"}},
		{Config{PubkeyAuthentication: false, PasswordAuthentication: true, KbdInteractive: true}, []string{"password", "keyboard-interactive"}},
		{Config{PubkeyAuthentication: true, PasswordAuthentication: true, KbdInteractive: true,
			PreferredAuthentications: []string{"password", "publickey"}}, []string{"password", "publickey"}},
		{Config{PubkeyAuthentication: true, PasswordAuthentication: false, KbdInteractive: true,
			PreferredAuthentications: []string{"password"}}, nil},
	} {
		var got []string
		for _, m := range tc.cfg.authOrder() {
			if tc.cfg.offers(m) {
				got = append(got, m)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v offers %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

// TestHostKeyLimits: RequiredRSASize refuses small RSA host keys and
// CASignatureAlgorithms refuses host certificates signed otherwise.
func TestHostKeyLimits(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPub, _ := ssh.NewPublicKey(&small.PublicKey)
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca, _ := ssh.NewSignerFromKey(caPriv)
	hostPub, _, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewPublicKey(hostPub)
	cert := &ssh.Certificate{Key: hostKey, CertType: ssh.HostCert, ValidPrincipals: []string{"h"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	for _, tc := range []struct {
		cfg  Config
		key  ssh.PublicKey
		want string
	}{
		{Config{HostName: "h", Port: 22, RequiredRSASize: 2048}, smallPub, "1024-bit RSA key, smaller than RequiredRSASize 2048"},
		{Config{HostName: "h", Port: 22, CASignatureAlgorithms: []string{"rsa-sha2-512"}}, cert, "signed with ssh-ed25519, which CASignatureAlgorithms does not allow"},
	} {
		h := &hostKeyChecker{cfg: &tc.cfg, addr: addr.String()}
		if err := h.check("h:22", addr, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check(%s) = %v, want an error containing %q", tc.key.Type(), err, tc.want)
		}
	}
}

// TestIgnoredSSHConfigIsLogged: ssh_config options without effect are
// logged at debug level (visible with --debug), once per connection.
func TestIgnoredSSHConfigIsLogged(t *testing.T) {
	cfg := writeConfig(t, "Host *\n  ControlMaster auto\n")
	var buf bytes.Buffer
	o := Options{UserConfigFile: cfg, SystemConfigFile: "none", Home: t.TempDir(), LocalUser: "local",
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if _, err := Resolve(Target{Host: "box"}, o); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), `level=DEBUG msg="ssh_config ControlMaster has no effect: `+whyMux+`" host=box`); got != 1 {
		t.Errorf("log has the note %d times, want 1:\n%s", got, buf.String())
	}
}
