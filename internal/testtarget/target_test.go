package testtarget

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// run executes cmd on the target with a plain x/crypto client, so the
// harness is checked independently of internal/remote.
func run(t *testing.T, tt *Target, cmd, stdin string) (string, error) {
	t.Helper()
	hk, err := knownhosts.New(tt.WriteKnownHosts("kh"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", tt.Addr(), &ssh.ClientConfig{
		User:            tt.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(tt.ClientSigner)},
		HostKeyCallback: hk,
	})
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", tt.Addr(), err, tt.Logs())
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Stdin = strings.NewReader(stdin)
	out, err := s.CombinedOutput(cmd)
	return strings.TrimSpace(string(out)), err
}

func TestStandinsRecordAndHostSurvives(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"netns", Options{}},
		{"loopback", Options{Loopback: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			tt := Start(t, mode.opts)
			bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
			cmds := []string{"reboot", "/sbin/reboot now", "/usr/sbin/poweroff -f", "halt", "shutdown -r +0", "systemctl kexec", "kexec -e"}
			if _, err := os.Stat("/sbin/kexec"); err == nil {
				cmds = append(cmds, "/sbin/kexec -l /x")
			}
			for _, c := range cmds {
				if out, err := run(t, tt, c, ""); err != nil {
					t.Fatalf("%s: %v: %s", c, err, out)
				}
			}
			got := tt.Records()
			want := []string{"reboot", "reboot now", "poweroff -f", "halt", "shutdown -r +0", "systemctl kexec", "kexec -e"}
			if _, err := os.Stat("/sbin/kexec"); err == nil {
				want = append(want, "kexec -l /x")
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("Records() = %q, want %q", got, want)
			}
			after, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
			if !bytes.Equal(bootID, after) {
				t.Fatalf("boot id changed from %s to %s", bootID, after)
			}
			home, err := run(t, tt, "echo $HOME; id -u", "")
			if err != nil || home != filepath.Join(tt.Dir, "home", "root")+"\n0" {
				t.Errorf("home and uid = %q, %v; want the private root home and 0", home, err)
			}
		})
	}
}

func TestSudoUser(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     Options
		cmd      string
		stdin    string
		want     string
		wantFail bool
	}{
		{"nopasswd", Options{User: "alice"}, "sudo -n id -u", "", "0", false},
		{"password", Options{User: "bob", Password: "hunter2 'x\""}, "sudo -S -p '' id -u", "hunter2 'x\"\n", "0", false},
		{"password-required", Options{User: "carol", Password: "pw"}, "sudo -n id -u", "", "", true},
		{"no-sudo", Options{User: "dave", NoSudo: true}, "sudo -n id -u", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := Start(t, tc.opts)
			out, err := run(t, tt, tc.cmd, tc.stdin)
			if tc.wantFail {
				if err == nil {
					t.Fatalf("%s succeeded (%q), want a failure", tc.cmd, out)
				}
				return
			}
			if err != nil || out != tc.want {
				t.Fatalf("%s = %q, %v; want %q", tc.cmd, out, err, tc.want)
			}
			id, err := run(t, tt, "id -u", "")
			if err != nil || id == "0" {
				t.Fatalf("login uid = %q, %v; want the throwaway user", id, err)
			}
		})
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		if bytes.Contains(passwd, []byte("\n"+u+":")) {
			t.Errorf("host /etc/passwd contains %s; the user must live only in the private /etc", u)
		}
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	var ns, dir string
	var pid int
	t.Run("inner", func(t *testing.T) {
		tt := Start(t, Options{User: "ivan"})
		ns, pid, dir = tt.Netns, tt.cmd.Process.Pid, tt.Dir
		// A session that would outlive a plain kill of sshd.
		if out, err := run(t, tt, "nohup sleep 300 >/dev/null 2>&1 & echo started", ""); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	})
	if ns == "" {
		t.Skip("inner test skipped")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Fields(l + " x")[0] == ns {
			t.Errorf("network namespace %s still exists after cleanup", ns)
		}
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("unshare pid %d still exists after cleanup (kill 0: %v)", pid, err)
	}
	// Nothing started inside the target survives: not sshd (its argv names
	// the target's directory), not the background sleep.
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(dir)) || bytes.Equal(b, []byte("sleep\x00300\x00")) {
			t.Errorf("process left after cleanup: %s: %q", p, b)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("target directory %s still exists: %v", dir, err)
	}
}

func TestLoopGuard(t *testing.T) {
	dev := LoopDevice(t, 64<<20)
	link := filepath.Join(t.TempDir(), "by-partlabel-disk")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dev, link} {
		if err := RefuseUnlessOwnLoop(p); err != nil {
			t.Errorf("RefuseUnlessOwnLoop(%s) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/dev/vda", "/dev/sda", "/dev/loop250", "/dev/null", dev + "p1", "/dev/nvme0n1"} {
		if err := RefuseUnlessOwnLoop(p); err == nil {
			t.Errorf("RefuseUnlessOwnLoop(%s) = nil, want a refusal", p)
		}
	}
	if st, err := os.Stat(dev); err != nil || st.Mode()&os.ModeDevice == 0 {
		t.Fatalf("%s is not a device: %v", dev, err)
	}
}

// TestRestartReusesThePort restarts a target with a session open many times
// in a row: each restart must wait until the old sshd has let go of its
// port, or the new one fails with "Address already in use".
func TestRestartReusesThePort(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"netns", Options{}},
		{"loopback", Options{Loopback: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			tt := Start(t, mode.opts)
			for i := range 10 {
				if out, err := run(t, tt, "sleep 60 </dev/null >/dev/null 2>&1 & echo started", ""); err != nil {
					t.Fatalf("restart %d: %v: %s", i, err, out)
				}
				tt.Restart()
			}
			if out, err := run(t, tt, "echo ok", ""); err != nil || out != "ok" {
				t.Fatalf("after the restarts: %q, %v", out, err)
			}
		})
	}
}
