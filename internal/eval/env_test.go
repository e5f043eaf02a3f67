package eval

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestNixSeesNoSecrets evaluates, impurely, a layout that reads the installer's secrets
// with builtins.getEnv: Nix must see none of them, whether the caller gives no Env (the
// process's environment, as disko-compile, disko and the terraform provider do) or its own.
func TestNixSeesNoSecrets(t *testing.T) {
	needNix(t)
	secrets := []string{"SSHPASS", "SUDO_PASSWORD", "SSH_PRIVATE_KEY"}
	dir := t.TempDir()
	file := filepath.Join(dir, "layout.nix")
	layout := `{ disko.devices.nodev.seen = { fsType = "tmpfs"; mountOptions = map builtins.getEnv [ "SSHPASS" "SUDO_PASSWORD" "SSH_PRIVATE_KEY" "HOME" ]; }; }`
	if err := os.WriteFile(file, []byte(layout), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range secrets {
		t.Setenv(name, "secret-"+name)
	}
	t.Setenv("HOME", dir)
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	explicit := append(os.Environ(), "SSHPASS=other-secret")
	for name, ev := range map[string]*Evaluator{"process environment": {}, "explicit Env": {Env: explicit}} {
		t.Run(name, func(t *testing.T) {
			raw, err := ev.Devices(context.Background(), Source{Path: file})
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Nodev map[string]struct{ MountOptions []string } `json:"nodev"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			seen := got.Nodev["seen"].MountOptions
			want := []string{"", "", "", dir}
			if len(seen) != len(want) {
				t.Fatalf("nix saw %q, want %q", seen, want)
			}
			for i := range want {
				if seen[i] != want[i] {
					t.Errorf("nix saw SSHPASS, SUDO_PASSWORD, SSH_PRIVATE_KEY, HOME = %q, want %q", seen, want)
					break
				}
			}
		})
	}
}
