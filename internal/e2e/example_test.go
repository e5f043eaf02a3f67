package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// layoutFile is the repository's example: one disk with an ESP and a LUKS
// container holding LVM with / and /home, on /dev/vda.
const layoutFile = "../../examples/disk-config.nix"

// example is what the end-to-end install puts onto the machine, built once
// for all tests: the installer tarball, the layout's disko script and the
// stand-in system (store paths), and the files the install brings along.
type example struct {
	installer *testvm.Installer
	system    *testvm.System
	passFile  string // the LUKS passphrase (--disk-encryption-keys /tmp/secret.key FILE)
	extra     string // --extra-files tree
	greeting  string // content of extra/etc/demo/greeting
	clientKey string // a key root may log in with (the rig's)
}

var (
	exampleOnce sync.Once
	exampleVal  *example
	exampleErr  string
)

// theExample builds the example once per test binary (it is cached by the
// VM rig and Nix across runs as well).
func theExample(t *testing.T) *example {
	t.Helper()
	exampleOnce.Do(func() {
		ex, err := buildExample(t)
		if err != "" {
			exampleErr = err
			return
		}
		exampleVal = ex
	})
	if exampleErr != "" {
		t.Fatal(exampleErr)
	}
	return exampleVal
}

func buildExample(t *testing.T) (*example, string) {
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	ex := &example{installer: installer(t)}
	img, err := testvm.Build(ctx, testvm.BuildOptions{Log: testLogger{t}})
	if err != nil {
		return nil, err.Error()
	}
	ex.clientKey = img.ClientKeyPath
	clientPub, err := os.ReadFile(img.ClientKeyPath + ".pub")
	if err != nil {
		return nil, err.Error()
	}
	compile := func(args ...string) ([]byte, string) {
		out, err := exec.Command(filepath.Join(bin, "disko-compile"), args...).Output()
		if err != nil {
			msg := err.Error()
			if ee, ok := err.(*exec.ExitError); ok {
				msg += ": " + string(ee.Stderr)
			}
			return nil, "disko-compile " + strings.Join(args, " ") + ": " + msg
		}
		return out, ""
	}
	script, msg := compile("script", "destroy,format,mount", layoutFile)
	if msg != "" {
		return nil, msg
	}
	nixos, msg := compile("nixos-config", layoutFile)
	if msg != "" {
		return nil, msg
	}
	ex.system, err = testvm.BuildSystem(ctx, testvm.SystemOptions{
		NixOSConfig:    nixos,
		AuthorizedKeys: []string{strings.TrimSpace(string(clientPub))},
		// disk-config.nix opens LUKS with /tmp/secret.key; in the installed
		// system's initrd it comes from boot.initrd.secrets.
		InitrdSecrets: map[string]string{"/tmp/secret.key": "/etc/secrets/initrd/secret.key"},
		DiskoScript:   script,
		Log:           testLogger{t},
	})
	if err != nil {
		return nil, err.Error()
	}

	// The directory outlives the test that built it (the package's tests share it); it
	// lives in TestMain's directory, which is removed when the tests end, since it holds
	// a LUKS passphrase.
	dir, err := os.MkdirTemp(bin, "example-")
	if err != nil {
		return nil, err.Error()
	}
	pass := make([]byte, 16)
	rand.Read(pass)
	ex.passFile = filepath.Join(dir, "luks-passphrase")
	ex.extra = filepath.Join(dir, "extra")
	ex.greeting = "hello from --extra-files\n"
	files := []struct {
		path string
		data string
		mode os.FileMode
		uid  int
		gid  int
	}{
		{ex.passFile, hex.EncodeToString(pass), 0o600, 0, 0},
		{filepath.Join(ex.extra, "etc/secrets/initrd/secret.key"), hex.EncodeToString(pass), 0o400, 0, 0},
		{filepath.Join(ex.extra, "etc/demo/greeting"), ex.greeting, 0o640, 1234, 100},
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return nil, err.Error()
		}
		if err := os.WriteFile(f.path, []byte(f.data), f.mode); err != nil {
			return nil, err.Error()
		}
		os.Chmod(f.path, f.mode)
		if err := os.Chown(f.path, f.uid, f.gid); err != nil {
			return nil, err.Error()
		}
	}
	os.Chmod(filepath.Join(ex.extra, "etc/secrets"), 0o700)
	return ex, ""
}

// args are anywhere's flags for installing the example with the given SSH
// flags and kexec tarball (a file or a URL).
func (ex *example) args(sshFlags []string, kexec string) []string {
	return append(sshFlags,
		"--kexec", kexec,
		"--store-paths", ex.system.DiskoScript, ex.system.Toplevel,
		"--disk-encryption-keys", "/tmp/secret.key", ex.passFile,
		"--extra-files", ex.extra,
		"--copy-host-keys")
}
