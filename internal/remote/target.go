package remote

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Target is the destination a user typed: `[user@]host[:port]`, an
// ssh://[user@]host[:port] URI, or an ssh_config alias. Empty fields are
// filled from ssh_config and defaults by Resolve.
type Target struct {
	User string
	Host string
	Port int
}

// ParseTarget parses a destination. IPv6 addresses may be written bare
// (`::1`) or in brackets (`[::1]:2222`); the user part ends at the last '@'.
func ParseTarget(s string) (Target, error) {
	orig := s
	s = strings.TrimPrefix(s, "ssh://")
	s = strings.TrimSuffix(s, "/")
	var t Target
	if i := strings.LastIndex(s, "@"); i >= 0 {
		t.User, s = s[:i], s[i+1:]
		if t.User == "" {
			return Target{}, fmt.Errorf("target %q: empty user before '@' (example: root@192.0.2.1)", orig)
		}
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return Target{}, fmt.Errorf("target %q: missing ']' after IPv6 address (example: root@[2001:db8::1]:22)", orig)
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if rest := s[end+1:]; rest != "" && !strings.HasPrefix(rest, ":") {
			return Target{}, fmt.Errorf("target %q: unexpected %q after ']'", orig, rest)
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	if host == "" {
		return Target{}, fmt.Errorf("target %q: no host name (example: root@192.0.2.1:22)", orig)
	}
	if strings.ContainsAny(host, " \t\n/") {
		return Target{}, fmt.Errorf("target %q: host %q contains a space or '/'", orig, host)
	}
	t.Host = host
	if port != "" {
		p, err := parsePort(port)
		if err != nil {
			return Target{}, fmt.Errorf("target %q: %w", orig, err)
		}
		t.Port = p
	}
	return t, nil
}

// String formats the target back into the `[user@]host[:port]` form.
func (t Target) String() string {
	var b strings.Builder
	if t.User != "" {
		b.WriteString(t.User + "@")
	}
	host := t.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	b.WriteString(host)
	if t.Port != 0 {
		b.WriteString(":" + strconv.Itoa(t.Port))
	}
	return b.String()
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not a number between 1 and 65535", s)
	}
	return p, nil
}

// joinHostPort is net.JoinHostPort with an int port, for messages and dialing.
func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
