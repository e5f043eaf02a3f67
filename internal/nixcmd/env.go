package nixcmd

import (
	"os"
	"strings"
)

// childEnvNames are the variables a local Nix call may need: finding tools
// and its own files, locale and terminal, TLS roots and proxies for
// fetching, and the agent socket for git+ssh flake inputs and remote
// builders.
var childEnvNames = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "TMPDIR": true,
	"TERM": true, "NO_COLOR": true, "LANG": true, "LANGUAGE": true, "TZ": true,
	"SSH_AUTH_SOCK": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true, "CURL_CA_BUNDLE": true,
	"http_proxy": true, "https_proxy": true, "ftp_proxy": true, "all_proxy": true, "no_proxy": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "FTP_PROXY": true, "ALL_PROXY": true, "NO_PROXY": true,
}

// childEnvPrefixes are families of variables Nix and the fetchers it runs
// read: NIX_CONFIG, NIX_PATH, NIX_SSHOPTS…, XDG_CONFIG_HOME…, LC_ALL…,
// GIT_SSH_COMMAND….
var childEnvPrefixes = []string{"NIX_", "XDG_", "LC_", "GIT_"}

// ChildEnv returns the part of env (nil: the process's environment) a Nix
// child process gets. It is an allow-list, so the installer's secrets
// (SSHPASS, SUDO_PASSWORD, SSH_PRIVATE_KEY) and anything else the user's
// shell exports never reach Nix, its builders or the fetchers it starts.
// An impure evaluation reading other variables (builtins.getEnv) does not
// see them.
func ChildEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if childEnvNames[name] || hasAnyPrefix(name, childEnvPrefixes) {
			out = append(out, kv)
		}
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
