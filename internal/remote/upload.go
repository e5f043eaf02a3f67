package remote

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/tartree"
)

// unixMode converts an os.FileMode to the octal mode chmod takes. Both Go's
// special bits (os.ModeSetuid, …) and raw octal 0o4000-style bits are honoured.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm()) | uint32(m)&0o7000
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// Upload writes data to remotePath with exactly mode and owner (uid, gid;
// -1 keeps the shell user's). The file is written to a temporary name in
// the same directory (umask 077, so it is never readable by others on the
// way), given its owner and mode, renamed into place, and then checked with
// stat: mode, owner and size must match, or Upload fails. Missing parent
// directories are created with mode 0700.
func (s *Shell) Upload(ctx context.Context, data io.Reader, remotePath string, mode os.FileMode, uid, gid int) error {
	if !path.IsAbs(remotePath) {
		return fmt.Errorf("upload to %s: the remote path must be absolute", remotePath)
	}
	m := unixMode(mode)
	var script strings.Builder
	fmt.Fprintf(&script, "set -e\np=%s\nd=$(dirname \"$p\")\numask 077\nmkdir -p \"$d\"\n", shell.Quote(remotePath))
	script.WriteString("t=$(mktemp \"$d/.anywhere-upload.XXXXXX\")\ntrap 'rm -f \"$t\"' EXIT\ncat >\"$t\"\n")
	switch {
	case uid >= 0 && gid >= 0:
		fmt.Fprintf(&script, "chown %d:%d \"$t\"\n", uid, gid)
	case uid >= 0:
		fmt.Fprintf(&script, "chown %d \"$t\"\n", uid)
	case gid >= 0:
		fmt.Fprintf(&script, "chgrp %d \"$t\"\n", gid)
	}
	fmt.Fprintf(&script, "chmod %o \"$t\"\nmv -f \"$t\" \"$p\"\ntrap - EXIT\nstat -c '%%a %%u %%g %%s' \"$p\"\n", m)

	counter := &countingReader{r: data}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4096}
	err := s.Run(ctx, script.String(), counter, &stdout, stderr)
	if err != nil {
		if ee := (*ExitError)(nil); errors.As(err, &ee) {
			ee.Stderr = stderr.String()
		}
		return fmt.Errorf("upload to %s:%s: %w", s.c.cfg.Addr(), remotePath, err)
	}
	got := strings.Fields(stdout.String())
	if len(got) != 4 {
		return fmt.Errorf("upload to %s:%s: verification: unexpected stat output %q", s.c.cfg.Addr(), remotePath, stdout.String())
	}
	want := []string{strconv.FormatUint(uint64(m), 8), strconv.Itoa(uid), strconv.Itoa(gid), strconv.FormatInt(counter.n, 10)}
	names := []string{"mode", "uid", "gid", "size"}
	for i := range want {
		if (i == 1 && uid < 0) || (i == 2 && gid < 0) {
			continue
		}
		if got[i] != want[i] {
			return fmt.Errorf("upload to %s:%s: verification failed: %s is %s, want %s", s.c.cfg.Addr(), remotePath, names[i], got[i], want[i])
		}
	}
	return nil
}

// UploadFile uploads a local file; see Upload.
func (s *Shell) UploadFile(ctx context.Context, localPath, remotePath string, mode os.FileMode, uid, gid int) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("upload %s: %w", localPath, err)
	}
	defer f.Close()
	return s.Upload(ctx, f, remotePath, mode, uid, gid)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.r == nil {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TreeOptions changes how UploadTree maps owners.
type TreeOptions struct {
	// UID and GID, when not nil, own every entry on the target (what
	// nixos-anywhere's --extra-files does with --no-same-owner: root).
	// When nil, the local numeric owners are kept.
	UID, GID *int
}

// treeEntry is what UploadTree expects to find on the target afterwards.
type treeEntry struct {
	mode     uint32
	uid, gid int
	symlink  bool
}

// UploadTree copies the contents of localDir into remoteDir (created if
// missing) as a tar stream, keeping modes, numeric owners (unless opts
// overrides them), symlinks, hard links and modification times. remoteDir
// itself keeps its mode. Every entry is then checked with stat; owners are
// checked only when the shell runs as root, since only root can set them.
func (s *Shell) UploadTree(ctx context.Context, localDir, remoteDir string, opts TreeOptions) error {
	if !path.IsAbs(remoteDir) {
		return fmt.Errorf("upload %s to %s: the remote directory must be absolute", localDir, remoteDir)
	}
	if st, err := os.Stat(localDir); err != nil {
		return fmt.Errorf("upload %s: %w", localDir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("upload %s: not a directory", localDir)
	}
	want := map[string]treeEntry{}
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := writeTree(pw, localDir, opts, want)
		pw.CloseWithError(err)
		written <- err
	}()

	script := fmt.Sprintf("set -e\nd=%s\nmkdir -p \"$d\"\ncd \"$d\"\n"+
		"tar -x -p -v -f - | sed 's|/$||' | tr '\\n' '\\000' | xargs -0 -r stat -c '%%a %%u %%g %%n'\n", shell.Quote(remoteDir))
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4096}
	err := s.Run(ctx, script, pr, &stdout, stderr)
	pr.Close()
	if werr := <-written; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return fmt.Errorf("upload %s to %s:%s: %w", localDir, s.c.cfg.Addr(), remoteDir, werr)
	}
	if err != nil {
		if ee := (*ExitError)(nil); errors.As(err, &ee) {
			ee.Stderr = stderr.String()
		}
		return fmt.Errorf("upload %s to %s:%s: %w", localDir, s.c.cfg.Addr(), remoteDir, err)
	}
	return verifyTree(stdout.String(), want, s.IsRoot(), fmt.Sprintf("%s:%s", s.c.cfg.Addr(), remoteDir))
}

// writeTree streams localDir as a tar archive and records the expected
// result of each entry in want.
func writeTree(w io.Writer, localDir string, opts TreeOptions, want map[string]treeEntry) error {
	err := tartree.Write(w, localDir, tartree.Options{UID: opts.UID, GID: opts.GID, Added: func(h *tar.Header) {
		want[strings.TrimSuffix(h.Name, "/")] = treeEntry{mode: uint32(h.Mode), uid: h.Uid, gid: h.Gid, symlink: h.Typeflag == tar.TypeSymlink}
	}})
	if err != nil {
		return fmt.Errorf("reading %s: %w", localDir, err)
	}
	return nil
}

// verifyTree compares `stat -c '%a %u %g %n'` lines with what was sent.
func verifyTree(out string, want map[string]treeEntry, checkOwner bool, where string) error {
	seen := map[string]bool{}
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			continue
		}
		name := strings.TrimPrefix(f[3], "./")
		e, ok := want[name]
		if !ok {
			continue
		}
		seen[name] = true
		if !e.symlink && f[0] != strconv.FormatUint(uint64(e.mode), 8) {
			problems = append(problems, fmt.Sprintf("%s has mode %s, want %o", name, f[0], e.mode))
		}
		if checkOwner && (f[1] != strconv.Itoa(e.uid) || f[2] != strconv.Itoa(e.gid)) {
			problems = append(problems, fmt.Sprintf("%s is owned by %s:%s, want %d:%d", name, f[1], f[2], e.uid, e.gid))
		}
	}
	for name := range want {
		if !seen[name] && !strings.Contains(name, "\n") {
			problems = append(problems, name+" is missing")
		}
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return fmt.Errorf("upload to %s: verification failed: %s", where, strings.Join(problems, "; "))
	}
	return nil
}
