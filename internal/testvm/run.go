package testvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// CommandError is a guest command that failed: it exited non-zero, was
// killed, or could not run. Its message carries the tail of stderr.
type CommandError struct {
	Command    string
	ExitStatus int    // -1 when the command did not exit normally
	Stderr     []byte // the last 8 KiB of it
	Err        error
}

func (e *CommandError) Error() string {
	cmd := e.Command
	if len(cmd) > 200 {
		cmd = cmd[:200] + "..."
	}
	msg := fmt.Sprintf("testvm: guest command %q: %v", cmd, e.Err)
	if s := strings.TrimSpace(string(e.Stderr)); s != "" {
		if ls := strings.Split(s, "\n"); len(ls) > 15 {
			s = "...\n" + strings.Join(ls[len(ls)-15:], "\n")
		}
		msg += "\nstderr:\n" + s
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// Run runs cmd with bash in the guest, as root, and returns its output.
// A non-zero exit is a *CommandError. When ctx ends the command is killed.
func (vm *VM) Run(ctx context.Context, cmd string) (stdout, stderr []byte, err error) {
	return vm.RunInput(ctx, cmd, nil)
}

// RunInput is Run with stdin fed from r.
func (vm *VM) RunInput(ctx context.Context, cmd string, r io.Reader) (stdout, stderr []byte, err error) {
	var o, e bytes.Buffer
	err = vm.Exec(ctx, cmd, r, &o, &e)
	return o.Bytes(), e.Bytes(), err
}

// Exec runs cmd with bash in the guest with its standard streams connected
// to stdin, stdout and stderr (nil: none), for long commands whose output
// should be seen as it comes. A failure is a *CommandError carrying the
// last lines of stderr.
func (vm *VM) Exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := vm.Client()
	if c == nil {
		return &CommandError{Command: cmd, ExitStatus: -1, Err: errors.New("no ssh connection (guest stopped or reconnecting)")}
	}
	s, err := newSession(ctx, c)
	if err != nil {
		return &CommandError{Command: cmd, ExitStatus: -1, Err: fmt.Errorf("new ssh session: %w", err)}
	}
	defer s.Close()
	var tail tailBuffer
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, &tail
	if stderr != nil {
		s.Stderr = io.MultiWriter(stderr, &tail)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Signal(ssh.SIGKILL)
		s.Close()
		<-done
		err = ctx.Err()
	}
	if err != nil {
		status := -1
		var ee *ssh.ExitError
		if errors.As(err, &ee) && ee.Signal() == "" {
			status = ee.ExitStatus()
		}
		return &CommandError{Command: cmd, ExitStatus: status, Stderr: tail.Bytes(), Err: err}
	}
	return nil
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const limit = 8 << 10
	t.b = append(t.b, p...)
	if len(t.b) > limit {
		t.b = append(t.b[:0], t.b[len(t.b)-limit:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.b }

// RunScript copies script into the guest and runs it with args (its #! line
// picks the interpreter; bash without one). The script gets no stdin, so
// tools that prompt fail instead of reading the script's own text.
func (vm *VM) RunScript(ctx context.Context, script []byte, args ...string) (stdout, stderr []byte, err error) {
	vm.mu.Lock()
	vm.scripts++
	name := fmt.Sprintf("/run/testvm/script-%d", vm.scripts)
	vm.mu.Unlock()
	if err := vm.WriteFile(ctx, name, script, 0o755); err != nil {
		return nil, nil, err
	}
	cmd := shell.Quote(name)
	for _, a := range args {
		cmd += " " + shell.Quote(a)
	}
	return vm.RunInput(ctx, cmd+" </dev/null", nil)
}

// WriteFile writes data to guestPath (creating parent directories) with mode.
func (vm *VM) WriteFile(ctx context.Context, guestPath string, data []byte, mode os.FileMode) error {
	return vm.writeFrom(ctx, guestPath, bytes.NewReader(data), mode)
}

// CopyIn copies the host file localPath to guestPath; mode 0 keeps the
// local file's permissions.
func (vm *VM) CopyIn(ctx context.Context, localPath, guestPath string, mode os.FileMode) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("testvm: copy in: %w", err)
	}
	defer f.Close()
	if mode == 0 {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("testvm: copy in: %w", err)
		}
		mode = st.Mode().Perm()
	}
	return vm.writeFrom(ctx, guestPath, f, mode)
}

func (vm *VM) writeFrom(ctx context.Context, guestPath string, r io.Reader, mode os.FileMode) error {
	if !path.IsAbs(guestPath) {
		return fmt.Errorf("testvm: guest path %q is not absolute", guestPath)
	}
	q := shell.Quote(guestPath)
	cmd := fmt.Sprintf("mkdir -p %s && cat > %s && chmod %o %s", shell.Quote(path.Dir(guestPath)), q, mode.Perm(), q)
	_, _, err := vm.RunInput(ctx, cmd, r)
	return err
}

// ReadFile returns the content of a guest file.
func (vm *VM) ReadFile(ctx context.Context, guestPath string) ([]byte, error) {
	out, _, err := vm.Run(ctx, "cat "+shell.Quote(guestPath))
	return out, err
}

// newSession opens a session on c, or gives up when ctx ends: opening one
// waits for the guest's answer, which a guest that hangs (or a starved one)
// never gives, and Stop's poweroff hung there until the test binary's
// timeout. A session that opens after all is closed at once.
func newSession(ctx context.Context, c *ssh.Client) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
