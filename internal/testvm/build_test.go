package testvm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuestPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/bin/bash", "/usr/bin/bash"},
		{"/sbin/mdadm", "/usr/sbin/mdadm"},
		{"/lib/udev/rules.d/55-dm.rules", "/usr/lib/udev/rules.d/55-dm.rules"},
		{"/lib64/ld-linux-x86-64.so.2", "/usr/lib64/ld-linux-x86-64.so.2"},
		{"/usr/bin/lsblk", "/usr/bin/lsblk"},
		{"/etc/lvm/lvm.conf", "/etc/lvm/lvm.conf"},
		{"/library", "/library"},
	} {
		if got := guestPath(c.in); got != c.want {
			t.Errorf("guestPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9-amd64", "6.1.0-56-amd64", true},
		{"6.1.0-56-amd64", "6.1.0-9-amd64", false},
		{"5.10.0-30-amd64", "6.1.0-1-amd64", true},
		{"6.1.0-56-amd64", "6.1.0-56-amd64", false},
	} {
		if got := versionLess(c.a, c.b); got != c.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestCpio writes an archive and unpacks it with GNU cpio, the reference
// reader of the newc format the kernel also reads.
func TestCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed (apt-get install cpio)")
	}
	host := filepath.Join(t.TempDir(), "host.txt")
	if err := os.WriteFile(host, []byte("from the host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := tree{}
	tr.addData("/etc/testvm/rc.sh", []byte("#!/bin/bash\necho hi\n"), 0o755)
	tr.addData("/odd", []byte("abc"), 0o640) // length not a multiple of 4
	tr.addFile("/usr/share/x/host.txt", host, 0o644)
	tr.addSymlink("/bin", "usr/bin")
	tr.addDir("/root", 0o700)
	var buf bytes.Buffer
	if err := tr.writeCpio(&buf); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = out, &buf
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, b)
	}
	for _, c := range []struct {
		path, content string
		mode          os.FileMode
	}{
		{"etc/testvm/rc.sh", "#!/bin/bash\necho hi\n", 0o755},
		{"odd", "abc", 0o640},
		{"usr/share/x/host.txt", "from the host\n", 0o644},
	} {
		p := filepath.Join(out, c.path)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != c.content {
			t.Errorf("%s: %q, %v; want %q", c.path, b, err, c.content)
			continue
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, st.Mode().Perm(), c.mode)
		}
	}
	if l, err := os.Readlink(filepath.Join(out, "bin")); err != nil || l != "usr/bin" {
		t.Errorf("bin -> %q, %v; want usr/bin", l, err)
	}
	if st, err := os.Stat(filepath.Join(out, "root")); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("root: %v, %v; want a 0700 directory", st, err)
	}
}

// TestFindOVMF checks the firmware override: a directory with both files is
// used, one without them is an error naming the variable, not a silent
// fallback to Debian's firmware.
func TestFindOVMF(t *testing.T) {
	m, err := machineFor(ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	findOVMF := m.findFirmware
	dir := t.TempDir()
	t.Setenv(ovmfDirEnv, dir)
	if _, err := findOVMF(); err == nil || !strings.Contains(err.Error(), ovmfDirEnv) {
		t.Fatalf("an empty %s: got %v, want an error naming it", ovmfDirEnv, err)
	}
	for _, name := range []string{"OVMF_CODE.fd", "OVMF_VARS.fd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("fw"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := findOVMF()
	if err != nil || f.code != filepath.Join(dir, "OVMF_CODE.fd") || f.vars != filepath.Join(dir, "OVMF_VARS.fd") {
		t.Fatalf("findOVMF() = %+v, %v; want the files in %s", f, err, dir)
	}
}
