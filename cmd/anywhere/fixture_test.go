package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// nixConfig keeps Nix offline and runnable as root without build users or a
// sandbox; the same settings reach the target's Nix through --option.
const nixConfig = "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false"

var nixOptionArgs = []string{"--option", "substituters", "", "--option", "build-users-group", "", "--option", "sandbox", "false"}

// requireE2E skips unless everything an install against a real target
// needs is here: root, sshd and namespaces (testtarget), Nix, the disk tools.
func requireE2E(t *testing.T) {
	t.Helper()
	testtarget.Require(t, true)
	for _, tool := range []string{"nix", "nix-store", "nix-env", "losetup", "partx", "sfdisk", "mkfs.ext4", "mkswap", "jq", "findmnt", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (see .ci/setup)", tool)
		}
	}
}

// layoutJSON is the test layout: GPT with a swap partition and an ext4
// root (what this machine's kernel can format and mount), whose create hook
// records, when the disk key is there, its mode, owner and hash.
func layoutJSON(device, keyPath string) string {
	hook := fmt.Sprintf(`if [ -e %[1]s ]; then stat -c '%%a %%U' %[1]s > %[1]s.seen; sha256sum %[1]s | cut -d' ' -f1 >> %[1]s.seen; fi`, keyPath)
	if keyPath == "" {
		hook = ""
	}
	b, _ := json.MarshalIndent(map[string]any{
		"disk": map[string]any{
			"main": map[string]any{
				"device":         device,
				"postCreateHook": hook,
				"content": map[string]any{"type": "gpt", "partitions": map[string]any{
					"swap": map[string]any{"size": "32M", "content": map[string]any{"type": "swap"}},
					"root": map[string]any{"size": "100%", "content": map[string]any{"type": "filesystem", "format": "ext4", "mountpoint": "/"}},
				}},
			},
		},
	}, "", "  ")
	return string(b)
}

// fixture is a flake with nixosConfigurations.test: a tiny "system" built
// with Debian's Nix whose activation and switch-to-configuration record
// that they ran (inside the chroot), referencing payload paths of random
// data, and that carries the flake's hardware-configuration.nix (which it
// cannot evaluate without, as a real configuration importing it); and disk
// scripts compiled for one loop device and mount point.
type fixture struct {
	Dir    string
	Flake  string // Dir + "#test"
	Layout string // layout.json (its device is the loop device)
}

// fixtureOptions shape the fixture.
type fixtureOptions struct {
	Device     string // loop device of the layout
	MountPoint string
	KeyPath    string // disk key the layout's hook checks ("" for none)
	Payloads   int    // number of random-data paths
	PayloadMB  int    // size of each
	Salt       string
	// NoHardwareConfig leaves hardware-configuration.nix out, for
	// --generate-hardware-config to write.
	NoHardwareConfig bool
}

const flakeNix = `{
  outputs = { self }:
    let
      system = "x86_64-linux";
      bb = "${builtins.path { path = ./bb; name = "busybox"; }}/bin/busybox";
      sh = name: script: derivation {
        inherit name system;
        salt = builtins.readFile ./salt;
        builder = bb;
        args = [ "sh" "-ec" script ];
      };
      payload = i: sh "payload-${toString i}"
        "${bb} dd if=/dev/urandom of=$out bs=1M count=${builtins.readFile ./payload-mb} status=none";
      payloads = builtins.genList payload (builtins.fromJSON (builtins.readFile ./payloads));
      toplevel = sh "nixos-system-anywhere-test" ''
        ${bb} mkdir -p $out/bin
        ${bb} sed "s|@bb@|${bb}|g" ${./switch-to-configuration} > $out/bin/switch-to-configuration
        ${bb} sed "s|@bb@|${bb}|g" ${./activate} > $out/activate
        ${bb} chmod 555 $out/bin/switch-to-configuration $out/activate
        ${bb} echo anywhere-test > $out/nixos-version
        ${bb} echo ${toString payloads} > $out/payloads
        ${bb} cp ${hardware} $out/hardware-configuration.nix
      '';
      script = name: file: sh name ''
        { ${bb} echo "#!${bb} sh"; ${bb} echo "exec /usr/bin/env bash ${file} --yes-wipe-all-disks \"\$@\""; } > $out
        ${bb} chmod 555 $out
      '';
      plain = name: file: sh name ''
        { ${bb} echo "#!${bb} sh"; ${bb} echo "exec /usr/bin/env bash ${file} \"\$@\""; } > $out
        ${bb} chmod 555 $out
      '';
      layout = builtins.fromJSON (builtins.readFile ./layout.json);
      hardware = builtins.toFile "hardware-configuration.nix" (builtins.readFile ./hardware-configuration.nix);
    in {
      diskoConfigurations.test = { disko.devices = layout; };
      nixosConfigurations.test.config = {
        disko.devices = layout;
        system.build = {
          inherit toplevel;
          diskoScript = script "disko" ./destroy-format-mount.sh;
          diskoScriptNoDeps = script "disko" ./destroy-format-mount.sh;
          # Like the module's formatScript: it formats and does not mount.
          formatScript = plain "disko-format" ./format.sh;
          mountScript = plain "disko-mount" ./mount.sh;
          installTest = sh "install-test" "${bb} echo install test ran > $out";
        };
      };
    };
}
`

const switchScript = `#!@bb@ sh
@bb@ mkdir -p /var/lib/anywhere-test
echo "switch-to-configuration $* bootloader=${NIXOS_INSTALL_BOOTLOADER:-}" >> /var/lib/anywhere-test/ran
`

const activateScript = `#!@bb@ sh
@bb@ mkdir -p /var/lib/anywhere-test
echo "activate IN_NIXOS_ENTER=${IN_NIXOS_ENTER:-}" >> /var/lib/anywhere-test/ran
`

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "flake")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if o.Payloads == 0 {
		o.Payloads, o.PayloadMB = 2, 1
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	layout := layoutJSON(o.Device, o.KeyPath)
	d, err := config.Load([]byte(layout), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := codegen.Generate(d, codegen.Options{RootMountpoint: o.MountPoint})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"flake.nix":               []byte(flakeNix),
		"bb/bin/busybox":          busybox,
		"switch-to-configuration": []byte(switchScript),
		"activate":                []byte(activateScript),
		"layout.json":             []byte(layout),
		"salt":                    []byte(o.Salt + t.Name()),
		"payloads":                []byte(fmt.Sprint(o.Payloads)),
		"payload-mb":              []byte(fmt.Sprint(o.PayloadMB)),
		"destroy-format-mount.sh": scripts.DestroyFormatMount,
		"format.sh":               scripts.Format,
		"mount.sh":                scripts.Mount,
	}
	if !o.NoHardwareConfig {
		files["hardware-configuration.nix"] = []byte("{ }\n")
	}
	for name, b := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{Dir: dir, Flake: dir + "#test", Layout: filepath.Join(dir, "layout.json")}
}

// build builds attributes of the fixture, as a user would with nix build.
func (f *fixture) build(t *testing.T, attrs ...string) []string {
	t.Helper()
	var inst []string
	for _, a := range attrs {
		inst = append(inst, f.Dir+"#nixosConfigurations.test.config.system.build."+a)
	}
	cmd := exec.Command("nix", append([]string{"build", "--no-link", "--json"}, inst...)...)
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+nixConfig)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix build %v: %v\n%s", attrs, err, stderr.String())
	}
	var res []struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range res {
		paths = append(paths, r.Outputs["out"])
	}
	return paths
}

// world is one test's target, disk and files.
type world struct {
	t          *testing.T
	tt         *testtarget.Target
	loop       string
	mnt        string
	state      string
	knownHosts string
	home       string
	fix        *fixture
	keyFile    string // local disk key
	secret     string
	// checkDisk guards every disk the layout names (default: only this
	// test's loop devices).
	checkDisk func(string) error
}

type worldOptions struct {
	target    testtarget.Options
	fixture   fixtureOptions
	diskBytes int64
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	requireE2E(t)
	tt := testtarget.Start(t, o.target)
	if o.diskBytes == 0 {
		o.diskBytes = 512 << 20
	}
	loop := testtarget.LoopDevice(t, o.diskBytes)
	// A loop device keeps partition nodes that an earlier user added with
	// partx and did not remove; this disk is blank, so drop them.
	exec.Command("partx", "-d", loop).Run()
	// Runs before the loop device is detached: swap the layout turned on
	// lives in the host's kernel, whatever namespace turned it on.
	t.Cleanup(func() {
		parts, _ := filepath.Glob("/sys/class/block/" + filepath.Base(loop) + "/" + filepath.Base(loop) + "p*")
		for _, p := range parts {
			exec.Command("swapoff", "/dev/"+filepath.Base(p)).Run()
		}
		exec.Command("partx", "-d", loop).Run()
	})
	w := &world{t: t, tt: tt, loop: loop, home: t.TempDir(), checkDisk: testtarget.RefuseUnlessOwnLoop}
	w.mnt = filepath.Join(tt.Dir, "mnt")
	w.state = filepath.Join(t.TempDir(), "state.json")
	w.knownHosts = tt.WriteKnownHosts("known_hosts")
	w.secret = "s3cret-" + randomHex(16)
	w.keyFile = filepath.Join(t.TempDir(), "disk.key")
	if err := os.WriteFile(w.keyFile, []byte(w.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	fo := o.fixture
	fo.Device, fo.MountPoint = loop, w.mnt
	if fo.KeyPath == "" {
		fo.KeyPath = "/run/anywhere-test/disk.key"
	}
	w.fix = newFixture(t, fo)
	return w
}

// args are the flags every run against this world takes.
func (w *world) args(extra ...string) []string {
	a := []string{
		"-i", w.tt.ClientKeyFile,
		"--ssh-config", "none",
		"--ssh-option", "UserKnownHostsFile=" + w.knownHosts,
		"--ssh-option", "GlobalKnownHostsFile=/dev/null",
		"--state-file", w.state,
		"--mount-point", w.mnt,
		"--reboot-timeout", "60s",
	}
	a = append(a, nixOptionArgs...)
	return append(append(a, extra...), w.tt.Destination())
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
	events         []install.Event
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// has reports an event matching the fields set in want.
func (r result) has(want install.Event) bool { return r.index(want) >= 0 }

func (r result) find(want install.Event) *install.Event {
	for i, e := range r.events {
		if (want.Event == "" || e.Event == want.Event) && (want.Phase == "" || e.Phase == want.Phase) &&
			(want.Step == "" || strings.Contains(e.Step, want.Step)) && (want.Status == "" || e.Status == want.Status) {
			return &r.events[i]
		}
	}
	return nil
}

// index is the position of the first event matching the fields set in
// want, or -1.
func (r result) index(want install.Event) int {
	for i, e := range r.events {
		if (want.Event == "" || e.Event == want.Event) && (want.Phase == "" || e.Phase == want.Phase) &&
			(want.Step == "" || strings.Contains(e.Step, want.Step)) && (want.Status == "" || e.Status == want.Status) &&
			(want.Message == "" || strings.Contains(e.Message, want.Message)) {
			return i
		}
	}
	return -1
}

// run runs the whole command in-process with --json, refusing every disk
// but this world's loop device; onEvent sees the events as they come.
func (w *world) run(ctx context.Context, env []string, onEvent func(install.Event), args ...string) result {
	w.t.Helper()
	pr, pw := io.Pipe()
	var stdout bytes.Buffer
	var events []install.Event
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		dec := json.NewDecoder(io.TeeReader(pr, &stdout))
		for {
			var e install.Event
			if err := dec.Decode(&e); err != nil {
				io.Copy(&stdout, pr)
				return
			}
			events = append(events, e)
			if onEvent != nil {
				onEvent(e)
			}
		}
	}()
	var stderr bytes.Buffer
	env = append([]string{"HOME=" + w.home, "NIX_CONFIG=" + nixConfig, "PATH=" + os.Getenv("PATH")}, env...)
	d := deps{stdin: strings.NewReader(""), stdout: pw, stderr: &stderr, env: env, checkDisk: w.checkDisk}
	code := runWith(ctx, d, append([]string{"anywhere", "--json"}, args...))
	pw.Close()
	wg.Wait()
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), events: events}
}

// sh runs a command on the target as root (through sudo for a sudo user),
// inside its mount namespace, where the installed system is mounted.
func (w *world) sh(cmd string) string {
	w.t.Helper()
	out, err := w.shErr(cmd)
	if err != nil {
		w.t.Fatalf("on the target: %s: %v\n%s", cmd, err, out)
	}
	return out
}

func (w *world) shErr(cmd string) (string, error) {
	signer, err := ssh.ParsePrivateKey(mustRead(w.t, w.tt.ClientKeyFile))
	if err != nil {
		return "", err
	}
	c, err := ssh.Dial("tcp", w.tt.Addr(), &ssh.ClientConfig{
		User: w.tt.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the test's own checking client; the product never does this
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	full := cmd
	var stdin io.Reader
	if w.tt.User != "root" {
		full = "sudo -S -p '' sh -c " + shell.Quote(cmd)
		stdin = strings.NewReader(w.tt.Password + "\n")
	}
	s.Stdin = stdin
	out, err := s.CombinedOutput(full)
	return strings.TrimSpace(string(out)), err
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// hostKeyPair makes an ed25519 host key: the OpenSSH private key file
// content and the public key.
func hostKeyPair(t *testing.T) ([]byte, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "anywhere-test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), s.PublicKey()
}

// cmdlineSampler reads every process's command line until stopped and
// reports the ones containing needle (to prove a secret never is in argv).
type cmdlineSampler struct {
	stop    chan struct{}
	done    chan struct{}
	hits    []string
	samples int
}

func sampleCmdlines(needle string) *cmdlineSampler {
	s := &cmdlineSampler{stop: make(chan struct{}), done: make(chan struct{})}
	pid := regexp.MustCompile(`^/proc/[0-9]+/cmdline$`)
	go func() {
		defer close(s.done)
		for {
			files, _ := filepath.Glob("/proc/*/cmdline")
			for _, f := range files {
				if !pid.MatchString(f) {
					continue
				}
				b, err := os.ReadFile(f)
				if err == nil && bytes.Contains(b, []byte(needle)) {
					s.hits = append(s.hits, f+": "+strings.ReplaceAll(string(b), "\x00", " "))
				}
			}
			s.samples++
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *cmdlineSampler) Stop() ([]string, int) {
	close(s.stop)
	<-s.done
	return s.hits, s.samples
}
