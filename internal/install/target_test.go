package install

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// fakeTarget is a Conn, and the Shell of both its user and root, that
// answers the commands of a run from rules and records every command, what
// each read on stdin, and every upload. It stands in for sshd so that the
// run's own logic (resume, the state file, refusals, redaction) is tested
// alone; the SSH side is tested against sshd in internal/remote and
// cmd/anywhere.
type fakeTarget struct {
	facts string // what the facts script prints
	cfg   *remote.Config
	key   ssh.PublicKey
	login remote.Login
	rules []fakeRule

	mu      sync.Mutex
	cmds    []string
	stdin   []string
	uploads map[string][]byte
	dials   int
}

// fakeRule answers commands containing match.
type fakeRule struct {
	match          string
	stdout, stderr string
	err            error
}

// defaultRules answer what every run asks: a work directory, whether the
// mount point is mounted, the layout's disks resolved.
var defaultRules = []fakeRule{
	{match: "mktemp -d", stdout: "/run/anywhere.fake\n"},
	{match: "mountpoint -q", stdout: "yes\n"},
	{match: "readlink -f", stdout: "/dev/sda\n"},
}

func newFakeTarget(t *testing.T, factsFile string, edits ...string) *fakeTarget {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "facts", "testdata", factsFile))
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(out, edits[i]) {
			t.Fatalf("%s has no %q to edit", factsFile, edits[i])
		}
		out = strings.Replace(out, edits[i], edits[i+1], 1)
	}
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeTarget{facts: out, key: key, login: remote.Login{Method: remote.AuthPublicKey}, uploads: map[string][]byte{}}
}

func (f *fakeTarget) dial(_ context.Context, t remote.Target, o remote.Options) (Conn, error) {
	cfg, err := remote.Resolve(t, o)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = cfg
	f.dials++
	return f, nil
}

func (f *fakeTarget) Config() *remote.Config        { return f.cfg }
func (f *fakeTarget) HostKey() ssh.PublicKey        { return f.key }
func (f *fakeTarget) Login() remote.Login           { return f.login }
func (f *fakeTarget) User() Shell                   { return f }
func (f *fakeTarget) SetPrivilege(remote.Privilege) {}
func (f *fakeTarget) Close() error                  { return nil }
func (f *fakeTarget) Privilege() remote.Privilege {
	return remote.Privilege{User: "root", Method: remote.MethodRoot}
}

func (f *fakeTarget) Root(context.Context) (Shell, error) { return f, nil }

func (f *fakeTarget) Run(_ context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	var in []byte
	if stdin != nil {
		in, _ = io.ReadAll(stdin)
	}
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	f.stdin = append(f.stdin, string(in))
	f.mu.Unlock()
	if cmd == facts.Script() {
		_, err := io.WriteString(stdout, f.facts)
		return err
	}
	for _, r := range append(f.rules, defaultRules...) {
		if !strings.Contains(cmd, r.match) {
			continue
		}
		if stdout != nil {
			io.WriteString(stdout, r.stdout)
		}
		if stderr != nil {
			io.WriteString(stderr, r.stderr)
		}
		return r.err
	}
	return nil
}

func (f *fakeTarget) Output(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	err := f.Run(ctx, cmd, nil, &out, io.Discard)
	return out.Bytes(), err
}

func (f *fakeTarget) Upload(_ context.Context, data io.Reader, remotePath string, _ os.FileMode, _, _ int) error {
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads[remotePath] = b
	return nil
}

func (f *fakeTarget) UploadTree(context.Context, string, string, remote.TreeOptions) error {
	return errors.New("the fake target takes no trees")
}

// ran counts the commands that contained s.
func (f *fakeTarget) ran(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.cmds {
		if strings.Contains(c, s) {
			n++
		}
	}
	return n
}

// diskScript is how the disk script's command line starts.
const diskScript = "/run/anywhere.fake/disko-destroy-format-mount.sh"

// fakeRun is one invocation against a fake target.
type fakeRun struct {
	o      Options
	stdout bytes.Buffer
	stderr bytes.Buffer
}

// newFakeRun prepares a run of the disko phase of a one-disk layout
// compiled in-process (so nothing is built), with the state file in dir.
func newFakeRun(t *testing.T, dir string) *fakeRun {
	t.Helper()
	layout := filepath.Join(dir, "layout.json")
	if _, err := os.Stat(layout); err != nil {
		l := `{"disk":{"main":{"type":"disk","device":"/dev/sda","content":{"type":"gpt","partitions":{"root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`
		if err := os.WriteFile(layout, []byte(l), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeRun{o: Options{
		Target:      "root@192.0.2.1",
		Flake:       "/nonexistent#host", // never evaluated: the layout is compiled and the system not installed
		DiskoLayout: layout,
		Phases:      []Phase{PhaseDisko},
		StateFile:   filepath.Join(dir, "state.json"),
		SSH:         remote.Options{UserConfigFile: "none", SystemConfigFile: "none", Home: dir, LocalUser: "root"},
		Env:         []string{"HOME=" + dir},
	}}
}

func (fr *fakeRun) run(t *testing.T, f *fakeTarget) error {
	t.Helper()
	fr.stdout.Reset()
	fr.stderr.Reset()
	fr.o.Stdout, fr.o.Stderr = &fr.stdout, &fr.stderr
	err := runWith(context.Background(), fr.o, f.dial)
	t.Logf("run: %v\nstdout:\n%s\nstderr:\n%s", err, fr.stdout.String(), fr.stderr.String())
	return err
}

func readState(t *testing.T, path string) *State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

const resumeHint = "run the same command again to resume"

// TestResumeWithFakeTarget runs the disko phase as a user would after a
// failure: the failed phase is not recorded and the hint says how to
// resume; the re-run does it and records it; the next run skips it;
// --restart and a changed layout do it again.
func TestResumeWithFakeTarget(t *testing.T) {
	dir := t.TempDir()
	fr := newFakeRun(t, dir)
	f := newFakeTarget(t, "nixos-kexec-installer.out")
	f.rules = []fakeRule{{match: diskScript, stderr: "wipefs: /dev/sda: device busy\n", err: errors.New("exit status 1")}}

	err := fr.run(t, f)
	if err == nil || !strings.Contains(err.Error(), "disko phase") || !strings.Contains(err.Error(), resumeHint) {
		t.Fatalf("a failing disk script: got %v, want a disko phase error with the resume hint", err)
	}
	if !strings.Contains(fr.stderr.String(), "device busy") {
		t.Errorf("the disk script's output is not shown")
	}
	st := readState(t, fr.o.StateFile)
	if st.Done(PhaseDisko) || st.Target != "root@192.0.2.1:22" || st.Inputs["disko"] == "" {
		t.Errorf("state after the failure: %+v; want disko not done, the target and the layout's inputs recorded", st)
	}
	if !strings.HasPrefix(st.HostKey, "ssh-ed25519 ") {
		t.Errorf("state host key %q, want the target's", st.HostKey)
	}
	if f.ran("rm -rf -- /run/anywhere.fake") != 1 {
		t.Errorf("the work directory was not removed after the failure: %q", f.cmds)
	}

	f.rules = nil
	if err := fr.run(t, f); err != nil {
		t.Fatalf("the re-run: %v", err)
	}
	if got := f.ran(diskScript + " --yes-wipe-all-disks"); got != 2 {
		t.Errorf("the disk script ran %d times in two runs, want 2", got)
	}
	if !bytes.Contains(f.uploads[diskScript], []byte("mkfs.ext4")) {
		t.Errorf("the uploaded disk script does not format the root filesystem")
	}
	if st := readState(t, fr.o.StateFile); !st.Done(PhaseDisko) {
		t.Errorf("the disko phase is not recorded as done: %+v", st.Phases)
	}

	if err := fr.run(t, f); err != nil {
		t.Fatalf("the third run: %v", err)
	}
	if got := f.ran(diskScript); got != 2 {
		t.Errorf("a finished disko phase ran again (%d runs of the disk script)", got)
	}
	if !strings.Contains(fr.stderr.String(), "done in a previous run") {
		t.Errorf("the skipped phase is not reported")
	}

	fr.o.Restart = true
	if err := fr.run(t, f); err != nil {
		t.Fatalf("--restart: %v", err)
	}
	if got := f.ran(diskScript); got != 3 || !strings.Contains(fr.stderr.String(), "--restart: starting over") {
		t.Errorf("--restart: the disk script ran %d times in all, want 3, with a note", got)
	}

	fr.o.Restart = false
	fr.o.MountPoint = "/mnt2"
	if err := fr.run(t, f); err != nil {
		t.Fatalf("a changed mount point: %v", err)
	}
	if got := f.ran(diskScript); got != 4 || !strings.Contains(fr.stderr.String(), "mountPoint /mnt -> /mnt2); starting over") {
		t.Errorf("a changed mount point: the disk script ran %d times in all, want 4, with the change named", got)
	}
}

// TestResumeAfterKexec resumes a state file whose kexec and disko phases
// are done: on an installer both are skipped and nothing is written; on a
// target that restarted into its old system the kexec is done again (here
// refused, as a container cannot kexec).
func TestResumeAfterKexec(t *testing.T) {
	dir := t.TempDir()
	fr := newFakeRun(t, dir)
	fr.o.Phases = []Phase{PhaseKexec, PhaseDisko}
	f := newFakeTarget(t, "nixos-kexec-installer.out")
	if err := fr.run(t, f); err != nil {
		t.Fatal(err)
	}
	st := readState(t, fr.o.StateFile)
	if st.Done(PhaseKexec) || !st.Done(PhaseDisko) {
		t.Fatalf("on an installer the kexec phase is skipped, not done: %+v", st.Phases)
	}
	st.path = fr.o.StateFile
	if err := st.MarkDone(PhaseKexec, 0, st.DoneAt(PhaseDisko)); err != nil {
		t.Fatal(err)
	}
	if err := fr.run(t, f); err != nil {
		t.Fatal(err)
	}
	if got := f.ran(diskScript); got != 1 || strings.Count(fr.stderr.String(), "done in a previous run") != 2 {
		t.Errorf("resuming finished phases: the disk script ran %d times, want once; both phases should be reported done", got)
	}

	old := newFakeTarget(t, "debian-sudo-user.out")
	err := fr.run(t, old)
	if err == nil || !strings.Contains(err.Error(), "refusing to kexec") || strings.Contains(err.Error(), resumeHint) {
		t.Fatalf("kexec on a container: got %v, want a refusal without a resume hint", err)
	}
	if !strings.Contains(fr.stderr.String(), "the target no longer runs the installer") {
		t.Errorf("the restarted target is not reported")
	}
	if st := readState(t, fr.o.StateFile); st.Done(PhaseKexec) || !st.Done(PhaseDisko) {
		t.Errorf("after the restart the kexec phase must be forgotten, the disks kept: %+v", st.Phases)
	}
	if old.ran(diskScript) != 0 {
		t.Errorf("the disk script ran after a refused kexec")
	}
}

// TestRefusals checks what the run refuses before writing anything: each
// refusal leaves the disks alone (no disk script uploaded or run) and offers
// no resume, since the same command would be refused again.
func TestRefusals(t *testing.T) {
	canKexec := []string{"kexec_supported=n", "kexec_supported=y", "virt_container=docker", "virt_container=none", "dockerenv=y", "dockerenv=n", "lockdown=\n", "lockdown=[none] integrity\n"}
	tests := []struct {
		name  string
		facts string
		edits []string
		rules []fakeRule
		setup func(o *Options, dir string)
		want  string
	}{
		{name: "not Linux", facts: "nixos-kexec-installer.out", edits: []string{"kernel=Linux", "kernel=FreeBSD"},
			want: "runs FreeBSD, not Linux"},
		{name: "disk not allowed", facts: "nixos-kexec-installer.out",
			setup: func(o *Options, _ string) {
				o.CheckDisk = func(dev string) error { return errors.New(dev + " is not a disk of this test") }
			},
			want: "disk main: /dev/sda is not a disk of this test"},
		{name: "container", facts: "debian-sudo-user.out",
			setup: func(o *Options, _ string) { o.Phases = []Phase{PhaseKexec, PhaseDisko} },
			want:  "the target runs in a docker container, which cannot kexec"},
		{name: "kexec switched off", facts: "debian-sudo-user.out", edits: canKexec,
			rules: []fakeRule{{match: "kexec_load_disabled", stdout: "1\n"}},
			setup: func(o *Options, _ string) { o.Phases = []Phase{PhaseKexec, PhaseDisko} },
			want:  "kexec is switched off until the next boot"},
		{name: "password login before kexec", facts: "debian-sudo-user.out", edits: canKexec,
			setup: func(o *Options, _ string) {
				o.Phases = []Phase{PhaseKexec, PhaseDisko}
				o.SSH.SSHOptions = []string{"PubkeyAuthentication=no"}
			},
			want: "the installer lets root in with a key only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fr := newFakeRun(t, dir)
			f := newFakeTarget(t, tt.facts, tt.edits...)
			f.rules = tt.rules
			if tt.name == "password login before kexec" {
				f.login = remote.Login{Method: remote.AuthPassword}
			}
			if tt.setup != nil {
				tt.setup(&fr.o, dir)
			}
			err := fr.run(t, f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), resumeHint) {
				t.Errorf("a refusal offers to resume: %v", err)
			}
			if len(f.uploads) > 0 || f.ran(diskScript) > 0 {
				t.Errorf("a refused run wrote to the target: uploads %v, commands %q", f.uploads, f.cmds)
			}
		})
	}
}

// TestSecretsNeverReachTheTarget runs with a password, a sudo password and
// a disk key whose contents the disk script prints: no command line and
// no stdin carries any of them, the key travels only as its upload's
// content and is removed after the phase, and the output shows none.
func TestSecretsNeverReachTheTarget(t *testing.T) {
	dir := t.TempDir()
	fr := newFakeRun(t, dir)
	const password, sudoPassword, diskKey = "pw-Secret-4711", "sudo-Secret-0815", "luks-Secret-1234"
	keyFile := filepath.Join(dir, "disk.key")
	if err := os.WriteFile(keyFile, []byte(diskKey), 0o600); err != nil {
		t.Fatal(err)
	}
	fr.o.SSH.Password, fr.o.SSH.SudoPassword = password, sudoPassword
	fr.o.DiskEncryptionKeys = []DiskKey{{Remote: "/tmp/secret.key", Local: keyFile}}
	f := newFakeTarget(t, "nixos-kexec-installer.out")
	f.rules = []fakeRule{
		{match: diskScript, stdout: "read key " + diskKey + "\n", stderr: "sudo: " + sudoPassword + " password " + password + "\n"},
		{match: "stat -f", stdout: "/tmp/secret.key tmpfs\n"},
	}
	if err := fr.run(t, f); err != nil {
		t.Fatal(err)
	}
	if got := string(f.uploads["/tmp/secret.key"]); got != diskKey {
		t.Errorf("the disk key uploaded is %q, want the key file's content", got)
	}
	if f.ran("rm -f -- /tmp/secret.key") != 1 {
		t.Errorf("the disk key was not removed: %q", f.cmds)
	}
	state, err := os.ReadFile(fr.o.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{password, sudoPassword, diskKey} {
		for i, c := range f.cmds {
			if strings.Contains(c, secret) || strings.Contains(f.stdin[i], secret) {
				t.Errorf("command %q (stdin %q) carries a secret", c, f.stdin[i])
			}
		}
		for name, out := range map[string]string{"stdout": fr.stdout.String(), "stderr": fr.stderr.String(), "the state file": string(state)} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows the secret %q", name, secret)
			}
		}
	}
	if !strings.Contains(fr.stderr.String(), "read key ") {
		t.Errorf("the disk script's output is not shown at all")
	}
}
