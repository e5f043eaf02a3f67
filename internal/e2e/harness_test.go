package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// bin holds the binaries built once for all tests (anywhere, disko-compile).
var bin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", dir+"/",
			"github.com/diskoanywhere/diskoanywhere/cmd/anywhere",
			"github.com/diskoanywhere/diskoanywhere/cmd/disko-compile")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building the binaries:", err)
			return 1
		}
		bin = dir
		return m.Run()
	}()
	os.Exit(code)
}

// nixEnv is the environment every Nix call gets: no binary cache is
// reachable here, and flakes need the feature flag on Nix 2.8.
const nixConfig = "substituters =\nexperimental-features = nix-command flakes"

// needRoot skips tests that need what only root may do (qemu's disks in
// the cache, nix builds into /nix/store).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e tests run as root (nix builds into /nix/store, the VM rig's cache)")
	}
	if testing.Short() {
		t.Skip("boots VMs; skipped in -short mode")
	}
}

// result is one anywhere run.
type result struct {
	code   int
	output string // stdout and stderr, interleaved as printed
	took   time.Duration
}

// anywhere runs the built binary with args and shows its output in the test
// log line by line, as it comes. A per-test HOME keeps state files apart.
func anywhere(t *testing.T, ctx context.Context, home string, args ...string) result {
	t.Helper()
	return anywhereWatch(t, ctx, home, nil, args...)
}

// anywhereWatch is anywhere with onLine called for every output line.
func anywhereWatch(t *testing.T, ctx context.Context, home string, onLine func(string), args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "anywhere"), args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_STATE_HOME="+filepath.Join(home, "state"), "NIX_CONFIG="+nixConfig)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			t.Log("anywhere| " + sc.Text())
			out.WriteString(sc.Text() + "\n")
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	res := result{output: out.String(), took: time.Since(start)}
	if err != nil {
		res.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			res.code = ee.ExitCode()
		}
	}
	return res
}

// sshArgs are anywhere's flags to reach vm as root with the rig's key and
// its pinned host key (so the very first connection is verified, too).
func sshArgs(vm *testvm.VM) []string {
	return []string{"-i", vm.ClientKeyPath(), "-p", strconv.Itoa(vm.SSHPort()),
		"--ssh-option", "UserKnownHostsFile=" + vm.KnownHostsPath(),
		"--ssh-option", "StrictHostKeyChecking=yes"}
}

// addToStore puts a small file into the Nix store and returns its path
// (for runs whose phases do not use what --store-paths names).
func addToStore(t *testing.T, name, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nix-store", "--add", f).Output()
	if err != nil {
		t.Fatalf("nix-store --add: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// phaseTimes picks the "### Done" and phase lines' durations from an
// anywhere output, for the test log's summary.
func phaseTimes(output string) string {
	var b strings.Builder
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, "### ") || strings.Contains(line, " took ") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// closedPort is a port on 127.0.0.1 where nothing listens and, until the
// test ends, nothing can: a socket is bound to it but never listens, so
// connections are refused. (A listener closed again would free the port
// for any other program to take in the meantime.)
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
