package vmcycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// prompt is a question a script asks on its terminal, and what to type in answer.
type prompt struct {
	re     *lazyregexp.Regexp
	answer string
}

// The prompts compile on first use: every disko-compile run links this package (for
// vm-test), and compiling them at start-up was part of each compile's time.
var (
	// passphrasePrompt is disko_password's question (read -s -p on stdin), asked twice
	// when formatting ("... again: ").
	passphrasePrompt = lazyregexp.New(`Enter passphrase for [^\n]*: `)
	// consentPrompt is destroy's question without --yes-wipe-all-disks.
	consentPrompt = lazyregexp.New(`Type yes to wipe them, anything else to abort: `)
)

var ttyScripts atomic.Int64

// runOnTerminal runs script with args in the guest on a pseudo-terminal (an SSH pty:
// the scripts read passphrases and consent from stdin and insist that it is a
// terminal) and answers each prompt as it appears. It returns the output (stdout and
// stderr, as the terminal shows them) and how often each prompt was answered.
func runOnTerminal(ctx context.Context, vm *testvm.VM, script []byte, prompts []prompt, args ...string) (string, []int, error) {
	name := fmt.Sprintf("/run/vmtest/tty-%d.sh", ttyScripts.Add(1))
	if err := vm.WriteFile(ctx, name, script, 0o755); err != nil {
		return "", nil, err
	}
	cmd := shell.Quote(name)
	for _, a := range args {
		cmd += " " + shell.Quote(a)
	}
	client := vm.Client()
	if client == nil {
		return "", nil, errors.New("no ssh connection to the guest")
	}
	s, err := client.NewSession()
	if err != nil {
		return "", nil, fmt.Errorf("ssh session: %w", err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 40, 200, ssh.TerminalModes{ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}); err != nil {
		return "", nil, fmt.Errorf("ssh pty: %w", err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out := &notifyBuffer{changed: make(chan struct{}, 1)}
	s.Stdout, s.Stderr = out, out
	if err := s.Start(cmd); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", cmd, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	counts := make([]int, len(prompts))
	pos := 0
	answer := func() {
		for {
			text := out.String()
			first, end := -1, 0
			for i, p := range prompts {
				if loc := p.re.FindStringIndex(text[pos:]); loc != nil && (first < 0 || loc[0] < end-pos) {
					first, end = i, pos+loc[1]
				}
			}
			if first < 0 {
				return
			}
			pos = end
			counts[first]++
			fmt.Fprintf(stdin, "%s\n", prompts[first].answer)
		}
	}
	for {
		select {
		case <-out.changed:
			answer()
			continue
		case err = <-done:
		case <-ctx.Done():
			s.Signal(ssh.SIGKILL)
			s.Close()
			<-done
			err = ctx.Err()
		}
		break
	}
	text := strings.ReplaceAll(out.String(), "\r\n", "\n")
	if err != nil {
		return text, counts, fmt.Errorf("%s on a terminal: %w\noutput:\n%s", cmd, err, Tail(text, 30))
	}
	return text, counts, nil
}

// notifyBuffer collects output and signals each write.
type notifyBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (n *notifyBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	n.b.Write(p)
	n.mu.Unlock()
	select {
	case n.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (n *notifyBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

// Tail is the last n lines of text (a console log, a script's output), for error messages.
func Tail(text string, n int) string {
	ls := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(ls) > n {
		ls = append([]string{"..."}, ls[len(ls)-n:]...)
	}
	return strings.Join(ls, "\n")
}
