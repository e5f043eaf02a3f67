package install

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// Shell is what the phases do on the target as one user: run a command
// with its streams, read a command's output, and write files. A
// *remote.Shell is one; tests use a fake that records what it was asked.
type Shell interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
	Output(ctx context.Context, cmd string) ([]byte, error)
	Upload(ctx context.Context, data io.Reader, remotePath string, mode os.FileMode, uid, gid int) error
	UploadTree(ctx context.Context, localDir, remoteDir string, opts remote.TreeOptions) error
	Privilege() remote.Privilege
}

// Conn is one login on the target: who it is (its settings, host key and
// how it logged in), a shell as the login user, and a way to become root.
// The phases depend on this rather than on an SSH client, so that resume,
// the state file and the refusals can be tested without sshd.
type Conn interface {
	Config() *remote.Config
	HostKey() ssh.PublicKey
	Login() remote.Login
	User() Shell
	// SetPrivilege says how Root becomes root (from the facts).
	SetPrivilege(p remote.Privilege)
	Root(ctx context.Context) (Shell, error)
	Close() error
}

// dialFunc opens a Conn to t; Run uses dialSSH.
type dialFunc func(ctx context.Context, t remote.Target, o remote.Options) (Conn, error)

// sshConn is a *remote.Client seen as a Conn. Go has no covariant return
// types, so the client's User and Root, which return a *remote.Shell, are
// wrapped here rather than changed.
type sshConn struct{ *remote.Client }

// The SSH side satisfies the seam; a change to *remote.Client or
// *remote.Shell that breaks it fails the build here.
var (
	_ Conn  = sshConn{}
	_ Shell = (*remote.Shell)(nil)
)

func (c sshConn) User() Shell { return c.Client.User() }

func (c sshConn) Root(ctx context.Context) (Shell, error) {
	sh, err := c.Client.Root(ctx)
	if err != nil {
		return nil, err
	}
	return sh, nil
}

func dialSSH(ctx context.Context, t remote.Target, o remote.Options) (Conn, error) {
	c, err := remote.Dial(ctx, t, o)
	if err != nil {
		return nil, err
	}
	return sshConn{c}, nil
}

// connect logs in to the target, gathers its facts and, unless userOnly,
// becomes root: the steps every run starts with. The caller closes
// r.client.
func (r *run) connect(ctx context.Context, userOnly bool) error {
	t, err := remote.ParseTarget(r.o.Target)
	if err != nil {
		return err
	}
	r.target = t

	s := r.rep.Step("connect", "ssh "+t.String())
	c, err := r.dial(ctx, t, r.o.SSH)
	if err == nil {
		s.Detail(fmt.Sprintf("%s, host key %s", c.Config().Destination(), ssh.FingerprintSHA256(c.HostKey())), nil)
	}
	if err := s.Done(err); err != nil {
		return err
	}
	r.client = c
	r.hostKey = c.HostKey()

	s = r.rep.Step("connect", "gather facts")
	r.facts, err = facts.Gather(ctx, c.User())
	if err == nil {
		c.SetPrivilege(r.facts.Privilege)
		r.bootID = r.facts.BootID
		s.Detail(describeFacts(r.facts), nil)
	}
	if err := s.Done(err); err != nil {
		return err
	}
	if r.facts.Kernel != "Linux" {
		return fmt.Errorf("%s runs %s, not Linux", t, r.facts.Kernel)
	}
	if userOnly {
		return nil
	}
	s = r.rep.Step("connect", "become root")
	r.root, err = c.Root(ctx)
	if err == nil {
		s.Detail(string(r.root.Privilege().Method), nil)
	}
	return s.Done(err)
}
