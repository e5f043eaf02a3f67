package closure

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
)

// nixConfig keeps Nix offline and runnable as root without build users or a
// sandbox (the fixtures' builders use the host's /bin tools).
const nixConfig = "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false"

func nixEnv() []string { return append(os.Environ(), "NIX_CONFIG="+nixConfig) }

// needNix skips unless the local Nix can build (root, no daemon on Debian).
func needNix(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: Debian's nix-bin has no daemon, so only root can use the store (uid %d)", os.Geteuid())
	}
	for _, tool := range []string{"nix", "nix-build", "nix-store"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install nix-bin)", tool)
		}
	}
}

func nixBuild(t testing.TB, file string, args ...string) string {
	t.Helper()
	cmd := exec.Command("nix-build", append([]string{file, "--no-out-link"}, args...)...)
	cmd.Env = nixEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-build %s: %v\n%s", file, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// localRunner runs the remote side of a copy as a local process: the same
// nix-store the SSH tests reach, without the SSH hop.
type localRunner struct{}

func (localRunner) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Env = nixEnv()
	c.Stdout, c.Stderr = stdout, stderr
	// Like an SSH session, do not wait for stdin to end once the command exited.
	in, err := c.StdinPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	go func() {
		io.Copy(in, stdin)
		in.Close()
	}()
	return c.Wait()
}

func TestDumpNARMatchesNixStore(t *testing.T) {
	needNix(t)
	root := nixBuild(t, "testdata/closure.nix")
	n := &nixcmd.Nix{Env: nixEnv()}
	infos, err := n.Closure(context.Background(), "", root)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("Closure(%s) has %d paths, want 2", root, len(infos))
	}
	for _, in := range infos {
		want, err := exec.Command("nix-store", "--dump", in.Path).Output()
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := DumpNAR(&got, in.Path); err != nil {
			t.Fatalf("DumpNAR(%s) = %v", in.Path, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("DumpNAR(%s) differs from nix-store --dump (%d vs %d bytes)", in.Path, got.Len(), len(want))
		}
		if int64(got.Len()) != in.NarSize {
			t.Errorf("DumpNAR(%s) wrote %d bytes, path-info narSize = %d", in.Path, got.Len(), in.NarSize)
		}
	}
}

func TestCopyIntoChrootStoreResumes(t *testing.T) {
	needNix(t)
	ctx := context.Background()
	root := nixBuild(t, "testdata/closure.nix", "--argstr", "salt", "copy-"+t.Name())
	n := &nixcmd.Nix{Env: nixEnv()}
	infos, err := n.Closure(ctx, "", root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := "local?root=" + dir
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", dir).Run() })

	// First only the leaf, as if a copy had been cut after one path.
	st, err := Copy(ctx, localRunner{}, infos[:1], CopyOptions{Store: store})
	if err != nil {
		t.Fatalf("Copy(leaf) = %v", err)
	}
	if st.Paths != 1 || st.Present != 0 {
		t.Errorf("Copy(leaf) stats = %+v, want 1 path sent, 0 present", st)
	}
	var progress []Progress
	st, err = Copy(ctx, localRunner{}, infos, CopyOptions{Store: store, Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatalf("Copy(closure) = %v", err)
	}
	if st.Paths != 1 || st.Present != 1 || st.Bytes != infos[1].NarSize {
		t.Errorf("Copy(closure) stats = %+v, want 1 sent (%d bytes), 1 present", st, infos[1].NarSize)
	}
	if len(progress) == 0 || progress[len(progress)-1].PathsDone != 1 {
		t.Errorf("last progress = %+v, want 1 path done", progress)
	}
	out, err := exec.Command("nix-store", "--store", store, "--verify-path", root).CombinedOutput()
	if err != nil {
		t.Fatalf("nix-store --verify-path in the chroot store: %v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, root, "ref")); err != nil || strings.TrimSpace(string(b)) != infos[0].Path {
		t.Errorf("%s/ref = %q, %v; want %s", root, b, err, infos[0].Path)
	}
	st, err = Copy(ctx, localRunner{}, infos, CopyOptions{Store: store})
	if err != nil || st.Paths != 0 || st.Present != 2 {
		t.Errorf("third Copy = %+v, %v; want nothing sent, 2 present", st, err)
	}
}

func TestCopyReportsTheTargetsError(t *testing.T) {
	needNix(t)
	root := nixBuild(t, "testdata/closure.nix")
	infos, err := (&nixcmd.Nix{Env: nixEnv()}).Closure(context.Background(), "", root)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]nixcmd.PathInfo(nil), infos...)
	bad[0].NarHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	dir := t.TempDir()
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", dir).Run() })
	_, err = Copy(context.Background(), localRunner{}, bad, CopyOptions{Store: "local?root=" + dir})
	if err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("Copy with a wrong hash = %v, want the target's hash mismatch message", err)
	}
	_, err = Copy(context.Background(), localRunner{}, infos, CopyOptions{Program: "/nonexistent/nix-store"})
	if err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("Copy with a missing nix-store = %v, want an error naming it", err)
	}
}
