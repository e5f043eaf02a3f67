package install

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// The installer a kexec boots lets root in with the authorized keys that
// nixos-images' kexec/run carried over (root's and the sudo or doas
// user's ~/.ssh/authorized_keys, /etc/ssh/authorized_keys.d), never with a
// password. A run that logged in with a password (--env-password) would
// kexec into a machine nobody can log in to. So before the kexec a key this
// run holds is appended to the login user's ~/.ssh/authorized_keys, as
// nixos-anywhere does with ssh-copy-id: the key given with -i or
// SSH_PRIVATE_KEY, else an ed25519 key made for the target. A made key is
// kept next to the state file (0600) so that a re-run, which again has
// only the password, reaches the installer too; it is removed once the
// reboot phase has taken the installer down.

// installerKeyComment ends the authorized_keys line of a made key, so that
// a user who finds it knows where it came from.
const installerKeyComment = "anywhere-installer"

// InstallerKeyPath is where the key made for the installer of the target
// whose state file is statePath is kept.
func InstallerKeyPath(statePath string) string {
	base := strings.TrimSuffix(statePath, ".json")
	if base != statePath || !strings.HasSuffix(base, ".key") {
		return base + ".key"
	}
	return statePath + ".key"
}

// addSavedInstallerKey offers the key an earlier run made for this
// target's installer (an -i file), so that a re-run logging in with a
// password can reach an installer that takes keys only. Run calls it
// before it connects; it returns the file added, or "" when there is none.
func (o *Options) addSavedInstallerKey() string {
	statePath := o.StateFile
	if statePath == "" {
		t, err := remote.ParseTarget(o.Target)
		if err != nil {
			return ""
		}
		cfg, err := remote.Resolve(t, o.SSH)
		if err != nil {
			return "" // Run reports it
		}
		if statePath, err = DefaultStatePath(o.getenv, cfg.Destination()); err != nil {
			return ""
		}
	}
	p := InstallerKeyPath(statePath)
	if _, err := os.Stat(p); err != nil || slices.Contains(o.SSH.IdentityFiles, p) {
		return ""
	}
	o.SSH.IdentityFiles = append(o.SSH.IdentityFiles, p)
	return p
}

// authorizeInstallerKey makes sure the installer will let this run in: on
// a login with a password it appends a key of this run to the login user's
// ~/.ssh/authorized_keys (once), and every later connection offers that
// key. A key that cannot be authorized is a refusal: nothing has changed
// on the target yet.
func (r *run) authorizeInstallerKey(ctx context.Context) error {
	login := r.client.Login()
	if login.Method == remote.AuthPublicKey {
		return nil
	}
	phase := string(PhaseKexec)
	refuse := func(err error) error {
		return refusal{fmt.Errorf("refusing to kexec %s: the login used %s, but the installer lets root in with a key only; %w",
			r.target, describeMethod(login.Method), err)}
	}
	if !r.client.Config().PubkeyAuthentication {
		return refuse(errors.New("PubkeyAuthentication=no keeps this run from offering one: drop that --ssh-option"))
	}
	keyFile := InstallerKeyPath(r.state.Path())
	kept := "made for this target, kept in " + keyFile + " until the reboot phase"
	pub, from := login.GivenKey, login.GivenFrom
	switch {
	case pub != nil && from == "-i "+keyFile:
		from = kept // made by an earlier run
	case pub != nil:
		keyFile = ""
	default:
		var pemKey []byte
		var err error
		pub, pemKey, err = loadOrMakeKey(keyFile)
		switch {
		case errors.Is(err, errKeyNotSaved):
			r.rep.Warn(phase, fmt.Sprintf("%v: a re-run with the password alone will not reach the installer", err))
			r.o.SSH.PrivateKey, keyFile = pemKey, ""
			from = "made for this run"
		case err != nil:
			return refuse(err)
		default:
			if !slices.Contains(r.o.SSH.IdentityFiles, keyFile) {
				r.o.SSH.IdentityFiles = append(r.o.SSH.IdentityFiles, keyFile)
			}
			from = kept
		}
	}

	s := r.rep.Step(phase, "authorize a key for the installer")
	out, err := r.client.User().Output(ctx, authorizeScript(pub))
	if err != nil {
		s.Done(err)
		return refuse(fmt.Errorf("adding a key to the authorized_keys of %s failed (put one there yourself and pass it with -i): %w", r.client.Config().User, err))
	}
	verb, file, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	user := r.client.Config().User
	detail := fmt.Sprintf("added %s (%s) to %s's %s", fingerprint(pub), from, user, file)
	if verb == "present" {
		detail = fmt.Sprintf("%s (%s) is already in %s's %s", fingerprint(pub), from, user, file)
	}
	s.Detail(detail, map[string]any{"key": fingerprint(pub), "user": user, "file": file, "added": verb == "added", "keyFile": keyFile})
	s.Done(nil)
	return nil
}

func describeMethod(m string) string {
	switch m {
	case remote.AuthPassword:
		return "a password"
	case remote.AuthKeyboardInteractive:
		return "a password (keyboard-interactive)"
	}
	return "no credentials at all"
}

// errKeyNotSaved: the key was made but could not be kept for a re-run.
var errKeyNotSaved = errors.New("the key made for the installer could not be saved")

// loadOrMakeKey reads the installer key kept in path, or makes an ed25519
// key and keeps it there (0600). It returns the public key and the
// private key in OpenSSH form.
func loadOrMakeKey(path string) (ssh.PublicKey, []byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("the installer key %s does not load (%w); remove it to have a new one made", path, err)
		}
		return s.PublicKey(), b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading the installer key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, installerKeyComment)
	if err != nil {
		return nil, nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pemKey := pem.EncodeToMemory(block)
	if err := writeSecret(path, pemKey); err != nil {
		return s.PublicKey(), pemKey, fmt.Errorf("%w: %v", errKeyNotSaved, err)
	}
	return s.PublicKey(), pemKey, nil
}

// writeSecret writes a 0600 file atomically, creating its directory 0700.
func writeSecret(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".anywhere-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// forgetInstallerKey removes the key kept for the installer once the
// installer is gone, and stops offering it.
func (r *run) forgetInstallerKey() {
	if r.state == nil || r.state.Path() == "" {
		return
	}
	p := InstallerKeyPath(r.state.Path())
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.rep.Warn(string(PhaseReboot), fmt.Sprintf("the installer is gone, but its key %s could not be removed: %v", p, err))
	}
	r.o.SSH.IdentityFiles = slices.DeleteFunc(r.o.SSH.IdentityFiles, func(f string) bool { return f == p })
}

// authorizeScript appends pub to the login user's
// ~/.ssh/authorized_keys unless it is there already (whatever its comment
// or options: the installer's kexec/run carries a key from any line that
// holds it), and prints "added FILE" or "present FILE". A root whose home
// is not /root is refused: kexec/run reads /root/.ssh only.
func authorizeScript(pub ssh.PublicKey) string {
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	return fmt.Sprintf(`set -eu
umask 077
key=%s
line=%s
home=${HOME:-}
if [ -z "$home" ]; then
  echo "HOME is not set for $(id -un)" >&2
  exit 3
fi
if [ "$(id -u)" = 0 ] && [ "$home" != /root ]; then
  echo "root's home is $home, but the installer takes root's keys from /root/.ssh/authorized_keys only" >&2
  exit 3
fi
f=$home/.ssh/authorized_keys
if [ -f "$f" ] && grep -qF -- "$key" "$f"; then
  echo "present $f"
  exit 0
fi
mkdir -p "$home/.ssh"
if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then
  echo >>"$f"
fi
printf '%%s\n' "$line" >>"$f"
grep -qF -- "$key" "$f"
echo "added $f"
`, shell.Quote(key), shell.Quote(key+" "+installerKeyComment))
}
