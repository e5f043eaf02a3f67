package remote

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Target
		wantErr string
	}{
		{"host", Target{Host: "host"}, ""},
		{"root@10.0.0.2", Target{User: "root", Host: "10.0.0.2"}, ""},
		{"root@10.0.0.2:2222", Target{User: "root", Host: "10.0.0.2", Port: 2222}, ""},
		{"ssh://nixos@example.org:22/", Target{User: "nixos", Host: "example.org", Port: 22}, ""},
		{"[2001:db8::1]:22", Target{Host: "2001:db8::1", Port: 22}, ""},
		{"me@[::1]", Target{User: "me", Host: "::1"}, ""},
		{"2001:db8::1", Target{Host: "2001:db8::1"}, ""},
		{"a@b@host", Target{User: "a@b", Host: "host"}, ""},
		{"@host", Target{}, "empty user"},
		{"root@", Target{}, "no host name"},
		{"host:99999", Target{}, "port \"99999\""},
		{"host:ssh", Target{}, "port \"ssh\""},
		{"[::1", Target{}, "missing ']'"},
		{"ho st", Target{}, "contains a space"},
	} {
		got, err := ParseTarget(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseTarget(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if rt, err := ParseTarget(got.String()); err != nil || rt != got {
			t.Errorf("ParseTarget(%q.String() = %q) = %+v, %v; want a round trip", tc.in, got.String(), rt, err)
		}
	}
}

// writeConfig writes an ssh_config for the resolution tests.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolvePrecedence(t *testing.T) {
	home := t.TempDir()
	userCfg := writeConfig(t, `
Host box
  HostName 192.0.2.10
  User alice
  Port 2200
  IdentityFile ~/.ssh/box_key
  ProxyJump bastion
  ServerAliveInterval 30

Host bastion
  HostName 192.0.2.1
  User jump
  Port 2022
  IdentityFile %d/jump_key

Host *
  UserKnownHostsFile ~/kh
  StrictHostKeyChecking yes
`)
	sysCfg := writeConfig(t, `
Host *
  User nobody-from-system
  ConnectTimeout 7
  HashKnownHosts yes
`)
	base := Options{UserConfigFile: userCfg, SystemConfigFile: sysCfg, Home: home, LocalUser: "local"}
	for _, tc := range []struct {
		name   string
		target string
		mod    func(*Options)
		check  func(t *testing.T, c *Config)
	}{
		{"ssh_config alias", "box", nil, func(t *testing.T, c *Config) {
			want := Config{Alias: "box", HostName: "192.0.2.10", Port: 2200, User: "alice"}
			if c.HostName != want.HostName || c.Port != want.Port || c.User != want.User {
				t.Errorf("got %s, want alice@192.0.2.10:2200", c.Destination())
			}
			if got := c.IdentityFiles; !reflect.DeepEqual(got, []string{filepath.Join(home, ".ssh/box_key")}) {
				t.Errorf("IdentityFiles = %q", got)
			}
			if c.ServerAliveInterval != 30*time.Second || c.ConnectTimeout != 7*time.Second || !c.HashKnownHosts {
				t.Errorf("ServerAliveInterval=%s ConnectTimeout=%s HashKnownHosts=%v; want 30s, 7s (system file), true",
					c.ServerAliveInterval, c.ConnectTimeout, c.HashKnownHosts)
			}
			if c.StrictHostKeyChecking != "yes" || !reflect.DeepEqual(c.UserKnownHostsFiles, []string{filepath.Join(home, "kh")}) {
				t.Errorf("StrictHostKeyChecking=%s UserKnownHostsFiles=%q", c.StrictHostKeyChecking, c.UserKnownHostsFiles)
			}
			if len(c.ProxyJump) != 1 {
				t.Fatalf("ProxyJump = %d hops, want 1", len(c.ProxyJump))
			}
			j := c.ProxyJump[0]
			if j.Destination() != "jump@192.0.2.1:2022" || !reflect.DeepEqual(j.IdentityFiles, []string{filepath.Join(home, "jump_key")}) {
				t.Errorf("jump = %s %q, want jump@192.0.2.1:2022 with %%d expanded", j.Destination(), j.IdentityFiles)
			}
		}},
		{"destination beats ssh_config", "bob@box:2300", nil, func(t *testing.T, c *Config) {
			if c.Destination() != "bob@192.0.2.10:2300" {
				t.Errorf("got %s, want bob@192.0.2.10:2300", c.Destination())
			}
		}},
		{"-p beats ssh_config but not the destination", "box", func(o *Options) { o.Port = 2400 }, func(t *testing.T, c *Config) {
			if c.Port != 2400 {
				t.Errorf("Port = %d, want 2400", c.Port)
			}
		}},
		{"--ssh-option beats everything, later wins", "bob@box:2300", func(o *Options) {
			o.SSHOptions = []string{"User=carol", "Port=1", "Port=2500", "HostName=198.51.100.7",
				"StrictHostKeyChecking=accept-new", "UserKnownHostsFile=/dev/null", "ConnectTimeout=3",
				"ServerAliveInterval=0", "ServerAliveCountMax 9", "ProxyJump=none", "IdentityFile=/k1"}
		}, func(t *testing.T, c *Config) {
			if c.Destination() != "carol@198.51.100.7:2500" {
				t.Errorf("got %s, want carol@198.51.100.7:2500", c.Destination())
			}
			if c.StrictHostKeyChecking != "accept-new" || c.UserKnownHostsFiles[0] != "/dev/null" ||
				c.ConnectTimeout != 3*time.Second || c.ServerAliveInterval != 0 || c.ServerAliveCountMax != 9 {
				t.Errorf("overrides not applied: %+v", c)
			}
			if len(c.ProxyJump) != 0 {
				t.Errorf("ProxyJump=none left %d hops", len(c.ProxyJump))
			}
			if c.IdentityFiles[0] != "/k1" {
				t.Errorf("IdentityFiles = %q, want /k1 first", c.IdentityFiles)
			}
		}},
		{"jump hosts inherit only the global options", "box", func(o *Options) {
			o.SSHOptions = []string{"User=carol", "UserKnownHostsFile=/tmp/kh2", "ConnectTimeout=4"}
		}, func(t *testing.T, c *Config) {
			j := c.ProxyJump[0]
			if j.User != "jump" || j.UserKnownHostsFiles[0] != "/tmp/kh2" || j.ConnectTimeout != 4*time.Second {
				t.Errorf("jump = %s kh=%q timeout=%s; want user jump, /tmp/kh2, 4s", j.Destination(), j.UserKnownHostsFiles, j.ConnectTimeout)
			}
		}},
		{"defaults", "203.0.113.5", func(o *Options) { o.UserConfigFile, o.SystemConfigFile = "none", "none" }, func(t *testing.T, c *Config) {
			if c.Destination() != "local@203.0.113.5:22" || c.ConnectTimeout != DefaultConnectTimeout ||
				c.ServerAliveInterval != DefaultServerAliveInterval || c.ServerAliveCountMax != DefaultServerAliveCountMax ||
				c.StrictHostKeyChecking != "ask" || c.HashKnownHosts {
				t.Errorf("defaults = %+v", c)
			}
			want := []string{filepath.Join(home, ".ssh/id_ed25519"), filepath.Join(home, ".ssh/id_ecdsa"), filepath.Join(home, ".ssh/id_rsa")}
			if !reflect.DeepEqual(c.IdentityFiles, want) {
				t.Errorf("IdentityFiles = %q, want %q", c.IdentityFiles, want)
			}
			if c.UserKnownHostsFiles[0] != filepath.Join(home, ".ssh/known_hosts") {
				t.Errorf("UserKnownHostsFiles = %q", c.UserKnownHostsFiles)
			}
		}},
		{"AcceptNewHostKey upgrades only ask", "203.0.113.5", func(o *Options) {
			o.UserConfigFile, o.SystemConfigFile, o.AcceptNewHostKey = "none", "none", true
		}, func(t *testing.T, c *Config) {
			if c.StrictHostKeyChecking != "accept-new" {
				t.Errorf("StrictHostKeyChecking = %s, want accept-new", c.StrictHostKeyChecking)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.mod != nil {
				tc.mod(&o)
			}
			tg, err := ParseTarget(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Resolve(tg, o)
			if err != nil {
				t.Fatalf("Resolve(%s) = %v", tc.target, err)
			}
			tc.check(t, c)
		})
	}
}

func TestResolveErrors(t *testing.T) {
	proxyCmd := writeConfig(t, "Host pc\n  ProxyCommand nc %h %p\n")
	broken := writeConfig(t, "Match exec \"true\"\n  User x\n")
	for _, tc := range []struct {
		name, target string
		o            Options
		want         string
	}{
		{"unknown --ssh-option", "h", Options{SSHOptions: []string{"NoSuchOption=1"}}, "NoSuchOption is not an OpenSSH client option"},
		{"refused --ssh-option", "h", Options{SSHOptions: []string{"BindInterface=eth1"}}, "BindInterface is not supported"},
		{"malformed --ssh-option", "h", Options{SSHOptions: []string{"Port"}}, "want KEY=VALUE"},
		{"bad port option", "h", Options{SSHOptions: []string{"Port=abc"}}, `port "abc"`},
		{"bad StrictHostKeyChecking", "h", Options{SSHOptions: []string{"StrictHostKeyChecking=maybe"}}, "want yes, accept-new, no or ask"},
		{"bad bool", "h", Options{SSHOptions: []string{"BatchMode=perhaps"}}, "want yes or no"},
		{"bad timeout", "h", Options{SSHOptions: []string{"ConnectTimeout=-3"}}, "number of seconds"},
		{"missing -i file", "h", Options{IdentityFiles: []string{"/nonexistent/key"}}, "identity file /nonexistent/key (-i)"},
		{"ProxyCommand", "pc", Options{UserConfigFile: proxyCmd}, "use ProxyJump instead"},
		{"unparsable ssh_config", "h", Options{UserConfigFile: broken}, "parsing ssh_config " + broken},
		{"bad ProxyJump", "h", Options{SSHOptions: []string{"ProxyJump=@x"}}, "ProxyJump for host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.UserConfigFile == "" {
				tc.o.UserConfigFile = "none"
			}
			tc.o.SystemConfigFile = "none"
			tg, err := ParseTarget(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Resolve(tg, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve(%s) = %v, want an error containing %q", tc.target, err, tc.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{EnvAgentSocket: "/run/agent", EnvPrivateKey: "KEY", EnvPassword: "pw", EnvSudoPassword: "spw"}
	var o Options
	o.FromEnv(func(k string) string { return env[k] }, false)
	if o.AgentSocket != "/run/agent" || string(o.PrivateKey) != "KEY" || o.Password != "" || o.SudoPassword != "spw" {
		t.Errorf("FromEnv(envPassword=false) = %+v; want no login password", o)
	}
	o.FromEnv(func(k string) string { return env[k] }, true)
	if o.Password != "pw" {
		t.Errorf("FromEnv(envPassword=true).Password = %q, want pw", o.Password)
	}
}

func TestUnixMode(t *testing.T) {
	for _, tc := range []struct {
		in   os.FileMode
		want uint32
	}{
		{0o644, 0o644},
		{0o600, 0o600},
		{0o4755, 0o4755},
		{os.ModeSetuid | 0o755, 0o4755},
		{os.ModeSetgid | os.ModeSticky | 0o770, 0o3770},
	} {
		if got := unixMode(tc.in); got != tc.want {
			t.Errorf("unixMode(%v) = %o, want %o", tc.in, got, tc.want)
		}
	}
}
