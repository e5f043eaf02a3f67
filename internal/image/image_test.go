package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// helperEnv makes the test binary build images instead of running tests: the value is a
// JSON helperJob. Tests use it to build as another user (setpriv) or inside namespaces
// (unshare), which a goroutine cannot enter.
const helperEnv = "DISKO_IMAGE_TEST_JOB"

type helperJob struct {
	Layout              string            // JSON of disko.devices
	Out                 string            // output directory
	Format              string            // raw or qcow2
	Sizes               map[string]string // --size
	Files               []File
	NoSbin              bool // look tools up on PATH only
	System, ClosureInfo string
}

// helperResult is what the helper prints: the images, or the error and what was left
// in the output directory.
type helperResult struct {
	Paths []string
	Err   string
	Left  []string
}

func TestMain(m *testing.M) {
	if job := os.Getenv(helperEnv); job != "" {
		os.Exit(runHelper(job))
	}
	os.Exit(m.Run())
}

func runHelper(jobJSON string) int {
	var job helperJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if job.NoSbin {
		sbinDirs = nil
	}
	var res helperResult
	d, err := config.Load([]byte(job.Layout), config.LoadOptions{})
	if err == nil {
		res.Paths, err = Build(context.Background(), d, Options{OutDir: job.Out, Format: job.Format, Sizes: job.Sizes, Files: job.Files, System: job.System, ClosureInfo: job.ClosureInfo, Log: os.Stderr})
	}
	if err != nil {
		res.Err = err.Error()
		entries, _ := os.ReadDir(job.Out)
		for _, e := range entries {
			res.Left = append(res.Left, e.Name())
		}
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// helper runs the test binary as a build helper, wrapped in the command prefix (setpriv,
// unshare, ...), with the environment env added.
func helper(t *testing.T, prefix []string, env []string, job helperJob) helperResult {
	t.Helper()
	exe := testBinary(t)
	data, _ := json.Marshal(job)
	args := append(append([]string{}, prefix...), exe)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), env...), helperEnv+"="+string(data))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, stderr.String())
	}
	var res helperResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("helper output %q: %v\n%s", out, err, stderr.String())
	}
	t.Logf("helper %v:\n%s", prefix, stderr.String())
	return res
}

// testBinary is a copy of the test binary that every user may run (go test keeps it in
// a directory only its owner may enter).
func testBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := sharedTempDir(t)
	exe := filepath.Join(dir, "image.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// sharedTempDir is a temporary directory that every user may write to.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "image-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asNobody is the command prefix that runs a command as user nobody, with no groups.
func asNobody(t *testing.T) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil // already an ordinary user
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv is not installed (Debian: util-linux)")
	}
	return []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}
}

func load(t *testing.T, layout string) *config.Devices {
	t.Helper()
	d, err := config.Load([]byte(layout), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRefusals: what needs the kernel (without the layout's JSON for the VM path), what
// the build VM's kernel lacks, or what does not fit, is refused before anything is
// written, with the option path and what to do.
func TestRefusals(t *testing.T) {
	cases := []struct{ name, layout, want string }{
		{"luks", `{"disk":{"main":{"device":"/dev/sda","content":{"type":"gpt","partitions":{"p":{"size":"100%","content":{"type":"luks","name":"c"}}}}}}}`,
			"disko.devices.disk.main.content.partitions.p.content: luks needs the kernel's dm-crypt"},
		{"zfs", `{"disk":{"main":{"device":"/dev/sda","content":{"type":"gpt","partitions":{"p":{"size":"100%","content":{"type":"zfs","pool":"tank"}}}}}},"zpool":{"tank":{"type":"zpool"}}}`,
			"zfs needs the kernel's ZFS module, which the build VM's kernel (Debian's) does not have"},
		{"lvm", `{"disk":{"main":{"device":"/dev/sda","content":{"type":"gpt","partitions":{"p":{"size":"100%","content":{"type":"lvm_pv","vg":"pool"}}}}}},"lvm_vg":{"pool":{"type":"lvm_vg","lvs":{}}}}`,
			"disko.devices.lvm_vg: lvm_vg needs the kernel's device-mapper (LVM)"},
		{"btrfs-subvolumes", `{"disk":{"main":{"device":"/dev/sda","content":{"type":"gpt","partitions":{"p":{"size":"100%","content":{"type":"btrfs","subvolumes":{"/root":{"mountpoint":"/"}}}}}}}}}`,
			"btrfs subvolumes and swap files cannot be made without mounting the filesystem"},
		{"size", `{"disk":{"main":{"device":"/dev/sda","imageSize":"2 GB"}}}`, `imageSize`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := config.Load([]byte(c.layout), config.LoadOptions{})
			if err != nil {
				if strings.Contains(err.Error(), c.want) {
					return // refused by the model already
				}
				t.Fatal(err)
			}
			out := t.TempDir()
			_, err = Build(context.Background(), d, Options{OutDir: out})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("left in the output directory: %v", entries)
			}
		})
	}
}

// TestHooksAreNamed: create hooks cannot run while an image is built; the build says
// which ones it skipped.
func TestHooksAreNamed(t *testing.T) {
	d := load(t, `{"disk":{"main":{"device":"/dev/sda","imageSize":"64M","content":{"type":"gpt","partitions":{
  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","postCreateHook":"touch /tmp/x"}}}}}}}`)
	var log strings.Builder
	if _, err := Build(context.Background(), d, Options{OutDir: t.TempDir(), Log: &log}); err != nil {
		t.Fatal(err)
	}
	want := "warning: disko.devices.disk.main.content.partitions.root.content: preCreateHook and postCreateHook are not run"
	if !strings.Contains(log.String(), want) {
		t.Errorf("log %q does not say %q", log.String(), want)
	}
}

// TestNothingLeftOnFailure: a layout larger than its image, a missing mkfs tool and a
// full output disk each fail with a clear message and leave nothing in the output
// directory (the other disk of the layout, already built, included).
func TestNothingLeftOnFailure(t *testing.T) {
	twoDisks := func(rootSize string) string {
		return fmt.Sprintf(`{"disk":{
  "a":{"device":"/dev/sda","imageSize":"64M","content":{"type":"gpt","partitions":{"root":{"size":"100%%","content":{"type":"filesystem","format":"ext4"}}}}},
  "b":{"device":"/dev/sdb","imageSize":"512M","content":{"type":"gpt","partitions":{
    "esp":{"size":"64M","type":"EF00","content":{"type":"filesystem","format":"vfat"}},
    "data":{"size":%q,"content":{"type":"filesystem","format":"xfs"}}}}}}}`, rootSize)
	}
	t.Run("larger-than-image", func(t *testing.T) {
		res := helper(t, asNobody(t), nil, helperJob{Layout: twoDisks("1G"), Out: sharedTempDir(t)})
		wantFailure(t, res, "disko.devices.disk.b.content.partitions.data (partition 1, disk-b-data, start 0, end +1G) does not fit in an image of 512M (raise imageSize or pass --size b=SIZE)")
	})
	t.Run("missing-tool", func(t *testing.T) {
		// A PATH with every tool but mkfs.xfs.
		bin := sharedTempDir(t)
		for _, tool := range []string{"sfdisk", "mkfs.ext4", "mkfs.vfat", "cp", "unshare"} {
			p, err := toolPath(tool)
			if err != nil {
				t.Skip(err)
			}
			if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
				t.Fatal(err)
			}
		}
		res := helper(t, asNobody(t), []string{"PATH=" + bin}, helperJob{Layout: twoDisks("400M"), Out: sharedTempDir(t), NoSbin: true})
		wantFailure(t, res, "mkfs.xfs is not installed (Debian package xfsprogs)")
	})
	t.Run("full-disk", func(t *testing.T) {
		// A 3 MiB tmpfs in a mount namespace of an unprivileged user namespace: the
		// first image fits, the second's filesystems do not.
		if exec.Command("unshare", "--user", "--map-root-user", "--mount", "true").Run() != nil {
			t.Skip("this kernel does not let users make namespaces")
		}
		out := sharedTempDir(t)
		mount := fmt.Sprintf(`mount -t tmpfs -o size=3M tmpfs %q && exec "$@"`, out)
		prefix := append(asNobody(t), "unshare", "--user", "--map-root-user", "--mount", "--propagation", "private", "sh", "-c", mount, "sh")
		res := helper(t, prefix, nil, helperJob{Layout: twoDisks("400M"), Out: out})
		wantFailure(t, res, "hint: the output directory "+out+" is full: free space there or pass another --out")
	})
}

func wantFailure(t *testing.T, res helperResult, want ...string) {
	t.Helper()
	if res.Err == "" {
		t.Fatalf("the build succeeded: %v", res.Paths)
	}
	for _, w := range want {
		if !strings.Contains(res.Err, w) {
			t.Errorf("error %q does not say %q", res.Err, w)
		}
	}
	if len(res.Left) > 0 {
		t.Errorf("left in the output directory: %v", res.Left)
	}
	t.Logf("error: %s", res.Err)
}
