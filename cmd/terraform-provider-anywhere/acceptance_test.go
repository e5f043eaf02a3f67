package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	tfconfig "github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// accNixConfig keeps Nix offline and runnable as root without build users
// or a sandbox, here and (through nix_options) on the targets.
const accNixConfig = "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false"

// requireAcc skips unless a real Terraform (or OpenTofu), root, sshd in
// network namespaces, Nix and the disk tools are here; it sets up the
// environment terraform-plugin-testing and the installs read, so that
// nothing is downloaded.
func requireAcc(t *testing.T) string {
	t.Helper()
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		for _, name := range []string{"terraform", "tofu"} {
			if p, err := exec.LookPath(name); err == nil {
				tf = p
				break
			}
		}
	}
	if tf == "" {
		t.Skip("neither terraform nor tofu is on PATH (.ci/setup builds tofu)")
	}
	testtarget.Require(t, true)
	for _, tool := range []string{"nix", "nix-store", "nix-env", "losetup", "partx", "sfdisk", "mkfs.ext4", "blkid", "busybox", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (see .ci/setup)", tool)
		}
	}
	t.Setenv("TF_ACC", "1")
	t.Setenv("TF_ACC_TERRAFORM_PATH", tf)
	t.Setenv("CHECKPOINT_DISABLE", "1")
	t.Setenv("NIX_CONFIG", accNixConfig)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	return tf
}

// accFlake is a NixOS configuration built with Debian's Nix: a system whose
// switch-to-configuration records each call (with the system's variant)
// under @record@, so a test sees whether an install ("boot", in the
// installed root) or a deploy ("switch", on the running machine) ran it.
const accFlake = `{
  outputs = { self }:
    let
      bb = "${builtins.path { path = ./bb; name = "busybox"; }}/bin/busybox";
      toplevel = derivation {
        name = "nixos-system-tf-test";
        system = "x86_64-linux";
        builder = bb;
        variant = builtins.readFile ./variant;
        args = [ "sh" "-ec" ''
          ${bb} mkdir -p $out/bin
          ${bb} sed -e "s|@bb@|${bb}|g" -e "s|@variant@|$variant|g" ${./switch-to-configuration} > $out/bin/switch-to-configuration
          ${bb} chmod 555 $out/bin/switch-to-configuration
        '' ];
      };
    in { nixosConfigurations.test.config.system.build = { inherit toplevel; }; };
}
`

const accSwitch = `#!@bb@ sh
@bb@ mkdir -p @record@
echo "$1 @variant@" >> @record@/switched
`

// machine is one target of the fleet: an sshd in its own network
// namespace, a loop disk, a flake and a disk key.
type machine struct {
	name    string
	tt      *testtarget.Target
	loop    string
	flake   string // directory
	layout  string
	mnt     string
	keyFile string
	secret  string

	mu       sync.Mutex
	rebooted time.Time // when the reboot stand-in was called
}

func newMachine(t *testing.T, i int) *machine {
	t.Helper()
	m := &machine{name: fmt.Sprintf("m%d", i)}
	m.tt = testtarget.Start(t, testtarget.Options{})
	m.loop = testtarget.LoopDevice(t, 256<<20)
	exec.Command("partx", "-d", m.loop).Run()
	t.Cleanup(func() { exec.Command("partx", "-d", m.loop).Run() })
	m.mnt = filepath.Join(m.tt.Dir, "mnt")
	m.flake = filepath.Join(t.TempDir(), "flake")
	m.secret = fmt.Sprintf("disk-secret-%d-%d", i, time.Now().UnixNano())
	m.keyFile = filepath.Join(t.TempDir(), "disk.key")
	must(t, os.WriteFile(m.keyFile, []byte(m.secret), 0o600))
	bb, err := exec.LookPath("busybox")
	must(t, err)
	busybox, err := os.ReadFile(bb)
	must(t, err)
	// The layout's hook notes when the disko phase of this machine ran,
	// to show that the three installs overlapped.
	m.layout = filepath.Join(m.flake, "layout.json")
	layout := fmt.Sprintf(`{"disk": {"main": {"device": "/dev/will-be-replaced", "postCreateHook": "date +%%s%%N > %s/disko-started",
  "content": {"type": "gpt", "partitions": {"root": {"size": "100%%",
    "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}`, m.tt.Dir)
	for name, b := range map[string][]byte{
		"flake.nix":               []byte(accFlake),
		"bb/bin/busybox":          busybox,
		"switch-to-configuration": []byte(strings.ReplaceAll(accSwitch, "@record@", m.tt.Dir)),
		"variant":                 []byte("one"),
		"layout.json":             []byte(layout),
	} {
		p := filepath.Join(m.flake, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, b, 0o755))
	}
	return m
}

// watchReboot plays the machine's reboot: when the stand-in records the
// reboot command, sshd goes down and comes back with new host keys (in
// fresh namespaces, so the installer's mounts are gone, as after a real
// reboot).
func (m *machine) watchReboot(t *testing.T, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		for _, r := range m.tt.Records() {
			if strings.HasPrefix(r, "reboot") {
				m.mu.Lock()
				m.rebooted = time.Now()
				m.mu.Unlock()
				m.tt.Stop()
				// The new system has host keys of its own (none were
				// copied): a key other than the installer's is how the
				// reboot phase knows the new system answers.
				if err := m.tt.RotateHostKeys(); err != nil {
					t.Errorf("%s: %v", m.name, err)
				}
				time.Sleep(1500 * time.Millisecond)
				m.tt.Restart()
				return
			}
		}
	}
}

// sh runs a command on the machine as root, inside its namespaces.
func (m *machine) sh(t *testing.T, cmd string) string {
	t.Helper()
	c, err := ssh.Dial("tcp", m.tt.Addr(), &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(m.tt.ClientSigner)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the test's own checking client; the provider never does this
		Timeout:         10 * time.Second,
	})
	must(t, err)
	defer c.Close()
	s, err := c.NewSession()
	must(t, err)
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", m.name, cmd, err, out)
	}
	return strings.TrimSpace(string(out))
}

// rootFS reads the installed root partition from this machine's side of
// the disk, in a private mount namespace: its UUID, the marker a test left,
// and the system profile.
func (m *machine) rootFS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	part := m.loop + "p1"
	exec.Command("partx", "-u", m.loop).Run()
	script := fmt.Sprintf(`set -e
mount -o ro %[1]s %[2]s
echo "uuid=$(blkid -o value -s UUID %[1]s)"
echo "marker=$(cat %[2]s/marker 2>/dev/null || echo none)"
echo "switched=$(cat %[2]s%[3]s/switched 2>/dev/null | tr '\n' ';')"
`, part, dir, m.tt.Dir)
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: reading %s: %v\n%s", m.name, part, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (m *machine) hcl(hostKey string) string {
	hk := ""
	if hostKey != "" {
		hk = fmt.Sprintf("  host_key        = %q\n", hostKey)
	}
	return fmt.Sprintf(`
resource "anywhere_install" %[1]q {
  target_host     = %[2]q
  ssh_private_key = file(%[3]q)
%[4]s  flake           = "%[5]s#test"
  disko_layout    = %[6]q
  disks           = { main = %[7]q }
  phases          = ["disko", "install", "reboot"]
  mount_point     = %[8]q
  nix_options     = { substituters = "", "build-users-group" = "", sandbox = "false" }
  disk_encryption_keys = { %[9]q = %[10]q }
}
`, m.name, "root@"+m.tt.Host, m.tt.ClientKeyFile, hk, m.flake, m.layout, m.loop, m.mnt,
		filepath.Join(m.tt.Dir, "disk.key"), m.keyFile)
}

// TestAccInstallFleet drives the provider with a real Terraform against
// three network-namespace sshd targets with loop disks and stand-ins for
// reboot: the plan shows three creates and the apply installs them in
// parallel; a new system for one machine deploys only that one, without
// wiping; a changed host key fails that machine alone with a diagnostic
// on host_key while another deploys; import takes a machine by host;
// destroy wipes nothing; no secret is in the state or the logs.
func TestAccInstallFleet(t *testing.T) {
	requireAcc(t)
	logFile := filepath.Join(t.TempDir(), "terraform.log")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_LOG_PATH", logFile)

	ms := []*machine{newMachine(t, 0), newMachine(t, 1), newMachine(t, 2)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for _, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); m.watchReboot(t, stop) }()
	}
	config := func(hostKeys ...string) string {
		var b strings.Builder
		for i, m := range ms {
			hk := ""
			if i < len(hostKeys) {
				hk = hostKeys[i]
			}
			b.WriteString(m.hcl(hk))
		}
		return b.String()
	}
	addr := func(m *machine) string { return "anywhere_install." + m.name }
	uuids := map[string]string{}
	var rotated ssh.PublicKey

	// pinnedConfig pins m2's new host key, made when step 3 runs; it is
	// rendered when a step runs (and once before, when the steps are
	// validated, with the key m2 has then).
	pinnedConfig := func(tfconfig.TestStepConfigRequest) string {
		k := rotated
		if k == nil {
			k = ms[2].tt.HostKeys[0]
		}
		p := filepath.Join(t.TempDir(), "main.tf")
		must(t, os.WriteFile(p, []byte(config("", "", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))), 0o644))
		return p
	}

	secrets := func(state *terraform.State) error {
		var leaks []string
		key, _ := os.ReadFile(ms[0].tt.ClientKeyFile)
		needles := []string{strings.TrimSpace(string(key))}
		for _, m := range ms {
			needles = append(needles, m.secret)
		}
		var all strings.Builder
		for _, rs := range state.RootModule().Resources {
			for k, v := range rs.Primary.Attributes {
				fmt.Fprintf(&all, "%s=%s\n", k, v)
			}
		}
		log, _ := os.ReadFile(logFile)
		for _, n := range needles {
			if strings.Contains(all.String(), n) {
				leaks = append(leaks, "state")
			}
			if bytes.Contains(log, []byte(n)) {
				leaks = append(leaks, "terraform log")
			}
		}
		if len(leaks) > 0 {
			return fmt.Errorf("a secret is in the %v", leaks)
		}
		if len(log) == 0 {
			return fmt.Errorf("the terraform log %s is empty: the secrets check read nothing", logFile)
		}
		return nil
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"anywhere": providerserver.NewProtocol6WithError(newProvider("test")()),
		},
		Steps: []resource.TestStep{
			{
				// Three creates, installed in parallel.
				Config: config(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr(ms[0]), plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction(addr(ms[1]), plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction(addr(ms[2]), plancheck.ResourceActionCreate),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						var lastStart, firstReboot time.Time
						for _, m := range ms {
							b, err := os.ReadFile(filepath.Join(m.tt.Dir, "disko-started"))
							if err != nil {
								return fmt.Errorf("%s: the disko phase did not run: %v", m.name, err)
							}
							var ns int64
							fmt.Sscan(string(b), &ns)
							if s := time.Unix(0, ns); s.After(lastStart) {
								lastStart = s
							}
							m.mu.Lock()
							r := m.rebooted
							m.mu.Unlock()
							if r.IsZero() {
								return fmt.Errorf("%s: the reboot stand-in was not called", m.name)
							}
							if firstReboot.IsZero() || r.Before(firstReboot) {
								firstReboot = r
							}
							fs := m.rootFS(t)
							if !strings.Contains(fs, "switched=boot one;") {
								return fmt.Errorf("%s: the installed root does not show the system's install: %s", m.name, fs)
							}
							uuids[m.name] = fs[:strings.Index(fs, "\n")]
						}
						if !lastStart.Before(firstReboot) {
							return fmt.Errorf("the installs did not overlap: the last disko phase started at %s, after the first machine rebooted at %s",
								lastStart.Format(time.StampMilli), firstReboot.Format(time.StampMilli))
						}
						t.Logf("parallel: every disko phase started before the first reboot (%s before)", firstReboot.Sub(lastStart))
						return nil
					},
					resource.TestCheckResourceAttrSet(addr(ms[0]), "system"),
					resource.TestCheckResourceAttrSet(addr(ms[0]), "host_key_fingerprint"),
					resource.TestCheckResourceAttr(addr(ms[0]), "id", "root@"+ms[0].tt.Host),
					secrets,
				),
			},
			{
				// A new system for m0 only: an update of m0, deployed onto
				// the running machine without touching its disk.
				PreConfig: func() {
					for _, m := range ms {
						// The running "machine" is this host: keep the
						// system profile the deploy sets inside the
						// target's namespaces.
						m.sh(t, "mount -t tmpfs tmpfs /nix/var/nix/profiles")
					}
					must(t, os.WriteFile(filepath.Join(ms[0].flake, "variant"), []byte("two"), 0o644))
					markRoot(t, ms)
				},
				Config: config(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr(ms[0]), plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction(addr(ms[1]), plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction(addr(ms[2]), plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						if got := readFile(filepath.Join(ms[0].tt.Dir, "switched")); got != "switch two\n" {
							return fmt.Errorf("m0: switch-to-configuration calls on the running machine = %q, want one switch to the new system", got)
						}
						for _, m := range ms[1:] {
							if got := readFile(filepath.Join(m.tt.Dir, "switched")); got != "" {
								return fmt.Errorf("%s was deployed although its system did not change: %q", m.name, got)
							}
						}
						return checkNotWiped(t, ms, uuids)
					},
					secrets,
				),
			},
			{
				// m2 answers with another host key: its update fails on
				// host_key, and m1's deploy finishes.
				PreConfig: func() {
					ms[2].tt.Stop()
					must(t, ms[2].tt.RotateHostKeys())
					ms[2].tt.Restart()
					ms[2].sh(t, "mount -t tmpfs tmpfs /nix/var/nix/profiles")
					rotated = ms[2].tt.HostKeys[0]
					for _, m := range ms[1:] {
						must(t, os.WriteFile(filepath.Join(m.flake, "variant"), []byte("two"), 0o644))
					}
				},
				Config:      config(),
				ExpectError: regexp.MustCompile(`anywhere_install\s+root@` + regexp.QuoteMeta(ms[2].tt.Host) + `:\s+wrong\s+host\s+key`),
			},
			{
				// m1 was deployed while m2 failed; pinning m2's new key
				// lets its deploy through.
				PreConfig: func() {
					if got := readFile(filepath.Join(ms[1].tt.Dir, "switched")); got != "switch two\n" {
						t.Errorf("m1 was not deployed while m2 failed: %q", got)
					}
					if got := readFile(filepath.Join(ms[2].tt.Dir, "switched")); got != "" {
						t.Errorf("m2 was changed although its host key was wrong: %q", got)
					}
				},
				// The config names the key RotateHostKeys made in the
				// previous step, so it is rendered when the step runs.
				ConfigFile: pinnedConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr(ms[0]), plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction(addr(ms[2]), plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						if got := readFile(filepath.Join(ms[2].tt.Dir, "switched")); got != "switch two\n" {
							return fmt.Errorf("m2: switch calls = %q, want one switch to the new system", got)
						}
						return checkNotWiped(t, ms, uuids)
					},
					func(st *terraform.State) error {
						got := st.RootModule().Resources[addr(ms[2])].Primary.Attributes["host_key_fingerprint"]
						if want := ssh.FingerprintSHA256(rotated); got != want {
							return fmt.Errorf("m2 host_key_fingerprint = %s, want the new key's %s", got, want)
						}
						return nil
					},
					secrets,
				),
			},
			{
				// Import by host.
				ConfigFile:    pinnedConfig,
				ResourceName:  addr(ms[1]),
				ImportState:   true,
				ImportStateId: "root@" + ms[1].tt.Host,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 || states[0].Attributes["target_host"] != "root@"+ms[1].tt.Host {
						return fmt.Errorf("import by host: got %v", states)
					}
					return nil
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			// Destroy forgets: every disk still holds its filesystem and
			// marker, and no machine was touched.
			for _, m := range ms {
				for _, r := range m.tt.Records() {
					if strings.HasPrefix(r, "kexec") || strings.Count(strings.Join(m.tt.Records(), "\n"), "reboot") > 1 {
						return fmt.Errorf("%s: destroy ran %q", m.name, r)
					}
				}
			}
			return checkNotWiped(t, ms, uuids)
		},
	})
}

// markRoot leaves a marker file on each installed root, which a wipe would lose.
func markRoot(t *testing.T, ms []*machine) {
	t.Helper()
	for _, m := range ms {
		dir := t.TempDir()
		out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			fmt.Sprintf("set -e; mount %sp1 %s; echo kept-%s > %s/marker", m.loop, dir, m.name, dir)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: marker: %v\n%s", m.name, err, out)
		}
	}
}

// checkNotWiped requires every root filesystem to keep its UUID and marker.
func checkNotWiped(t *testing.T, ms []*machine, uuids map[string]string) error {
	for _, m := range ms {
		fs := m.rootFS(t)
		if !strings.HasPrefix(fs, uuids[m.name]+"\n") || !strings.Contains(fs, "marker=kept-"+m.name) {
			return fmt.Errorf("%s: the disk was changed: before %s, now:\n%s", m.name, uuids[m.name], fs)
		}
	}
	return nil
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
