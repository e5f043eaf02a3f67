package remote

import (
	"context"
	"strings"
	"testing"
)

func TestParsePrivilege(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want Privilege
	}{
		{"priv.uid=0\npriv.user=root\n", Privilege{User: "root", UID: 0, Method: MethodRoot}},
		{"priv.uid=1000\npriv.user=a\npriv.sudo=nopasswd\npriv.doas=nopasswd\n", Privilege{User: "a", UID: 1000, Method: MethodSudo}},
		{"priv.uid=1000\npriv.user=a\npriv.sudo=password\npriv.sudo_msg=sudo: a password is required\npriv.doas=nopasswd\n", Privilege{User: "a", UID: 1000, Method: MethodDoas}},
		{"priv.uid=1000\npriv.user=a\npriv.sudo=password\npriv.sudo_msg=m\n", Privilege{User: "a", UID: 1000, Method: MethodSudo, NeedsPassword: true, Detail: "m"}},
		{"priv.uid=1000\npriv.user=a\npriv.doas=password\npriv.doas_msg=doas: Authentication failed\n", Privilege{User: "a", UID: 1000, Method: MethodDoas, NeedsPassword: true, Detail: "doas: Authentication failed"}},
		{"priv.uid=1000\npriv.user=a\n", Privilege{User: "a", UID: 1000, Method: MethodNone, Detail: "neither sudo nor doas is installed"}},
	} {
		got, err := ParsePrivilege(ParseKeyValues([]byte(tc.out)))
		if err != nil || got != tc.want {
			t.Errorf("ParsePrivilege(%q) = %+v, %v; want %+v", tc.out, got, err, tc.want)
		}
	}
	if _, err := ParsePrivilege(ParseKeyValues([]byte("fish: unknown command\n"))); err == nil {
		t.Error("ParsePrivilege without a uid succeeded")
	}
}

// TestRootRefusals covers the escalation dead ends; they are decided before
// any command runs, so a client with a recorded privilege is enough.
func TestRootRefusals(t *testing.T) {
	for _, tc := range []struct {
		p    Privilege
		want string
	}{
		{Privilege{User: "pi", UID: 1000, Method: MethodDoas, NeedsPassword: true}, "doas reads passwords only from a terminal"},
		{Privilege{User: "pi", UID: 1000, Method: MethodNone, Detail: "neither sudo nor doas is installed"}, "is not root and neither sudo nor doas"},
		{Privilege{User: "pi", UID: 1000, Method: MethodSudo, NeedsPassword: true}, "set SUDO_PASSWORD"},
	} {
		c := &Client{cfg: &Config{HostName: "192.0.2.1", Port: 22}}
		c.SetPrivilege(tc.p)
		_, err := c.Root(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "192.0.2.1:22") {
			t.Errorf("Root() with %+v = %v, want an error naming the host and containing %q", tc.p, err, tc.want)
		}
	}
}
