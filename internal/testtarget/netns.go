package testtarget

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Network namespaces are named anywt-X and use 10.233.X.0/24 (host .1,
// target .2). `ip netns add` is the atomic claim on X, so parallel test
// processes never share a subnet; an owner file lets a later run remove the
// namespace of a test process that was killed before its cleanup ran.

func netnsName(x int) string    { return "anywt-" + strconv.Itoa(x) }
func vethHost(x int) string     { return "awh" + strconv.Itoa(x) }
func vethTarget(x int) string   { return "awt" + strconv.Itoa(x) }
func ownerFile(x int) string    { return fmt.Sprintf("%s/anywhere-testtarget-%d.owner", os.TempDir(), x) }
func subnetPrefix(x int) string { return fmt.Sprintf("10.233.%d.", x) }

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetns claims a free X, creates the namespace and the veth pair, and
// registers their removal.
func newNetns(t testing.TB) (string, int, error) {
	start := rand.IntN(250)
	for i := 0; i < 250; i++ {
		x := 1 + (start+i)%250
		ns := netnsName(x)
		if err := ipCmd("netns", "add", ns); err != nil {
			if !reapStale(x) {
				continue
			}
			if err := ipCmd("netns", "add", ns); err != nil {
				continue
			}
		}
		os.WriteFile(ownerFile(x), []byte(strconv.Itoa(os.Getpid())), 0o644)
		t.Cleanup(func() {
			if err := ipCmd("netns", "del", ns); err != nil {
				t.Errorf("testtarget: %v", err)
			}
			exec.Command("ip", "link", "del", vethHost(x)).Run()
			os.Remove(ownerFile(x))
		})
		if out, _ := exec.Command("ip", "-4", "-o", "addr", "show", "to", subnetPrefix(x)+"0/24").Output(); len(out) > 0 {
			continue // someone else uses this subnet on the host; the cleanup above frees the name
		}
		h, tg := vethHost(x), vethTarget(x)
		steps := [][]string{
			{"link", "add", h, "type", "veth", "peer", "name", tg, "netns", ns},
			{"addr", "add", subnetPrefix(x) + "1/24", "dev", h},
			{"link", "set", h, "up"},
			{"-n", ns, "addr", "add", subnetPrefix(x) + "2/24", "dev", tg},
			{"-n", ns, "link", "set", tg, "up"},
			{"-n", ns, "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := ipCmd(s...); err != nil {
				return "", 0, err
			}
		}
		return ns, x, nil
	}
	return "", 0, errors.New("no free network namespace anywt-1…250")
}

// reapStale deletes namespace X if its owner file names a process that no
// longer exists, and reports whether it did.
func reapStale(x int) bool {
	b, err := os.ReadFile(ownerFile(x))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
		return false
	}
	if ipCmd("netns", "del", netnsName(x)) != nil {
		return false
	}
	exec.Command("ip", "link", "del", vethHost(x)).Run()
	os.Remove(ownerFile(x))
	return true
}
