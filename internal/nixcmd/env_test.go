package nixcmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// secretVars are the installer's secrets, which no Nix child may see.
var secretVars = []string{"SSHPASS", "SUDO_PASSWORD", "SSH_PRIVATE_KEY"}

func TestChildEnvKeepsWhatNixNeeds(t *testing.T) {
	env := []string{
		"PATH=/bin", "HOME=/root", "NIX_CONFIG=x", "NIX_PATH=nixpkgs=/n", "XDG_CACHE_HOME=/c",
		"LC_ALL=C", "GIT_SSH_COMMAND=ssh -i k", "SSH_AUTH_SOCK=/s", "https_proxy=http://p",
		"SSHPASS=pw", "SUDO_PASSWORD=sp", "SSH_PRIVATE_KEY=-----BEGIN", "AWS_SECRET_ACCESS_KEY=a", "NOEQUALS",
	}
	got := ChildEnv(env)
	want := env[:9]
	if !slices.Equal(got, want) {
		t.Errorf("ChildEnv = %q, want %q", got, want)
	}
}

// TestNixChildSeesNoSecrets runs the real nix with the secrets in its
// starting environment and has it report, from an impure evaluation, what
// it sees.
func TestNixChildSeesNoSecrets(t *testing.T) {
	if _, err := exec.LookPath("nix"); err != nil {
		t.Skip("nix is not installed (apt-get install nix-bin)")
	}
	if os.Geteuid() != 0 {
		t.Skipf("needs root: Debian's nix-bin has no daemon, so only root can use the store (uid %d)", os.Geteuid())
	}
	dir := t.TempDir()
	flake := `{ outputs = _: { env = map builtins.getEnv [ "SSHPASS" "SUDO_PASSWORD" "SSH_PRIVATE_KEY" "HOME" ]; }; }`
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes", "HOME="+dir)
	for _, name := range secretVars {
		env = append(env, name+"=secret-"+name)
	}
	n := &Nix{Env: env, Options: [][2]string{{"pure-eval", "false"}}}
	var got []string
	if err := n.EvalJSON(context.Background(), "path:"+dir+"#env", &got); err != nil {
		t.Fatal(err)
	}
	if want := []string{"", "", "", dir}; !slices.Equal(got, want) {
		t.Errorf("nix saw SSHPASS, SUDO_PASSWORD, SSH_PRIVATE_KEY, HOME = %q, want %q", got, want)
	}
}
