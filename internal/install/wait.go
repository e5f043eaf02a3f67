package install

import (
	"context"
	"errors"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// restart is what waitRestart saw of a target that was told to kexec or
// reboot.
type restart int

const (
	restartDown     restart = iota // it stopped answering SSH
	restartNewBoot                 // it answers with the same key as a new boot
	restartOtherKey                // it answers with another host key
)

// waitRestart polls the target over SSH until it stops answering, or
// answers as a new boot or with another host key (then that key is
// returned). A TCP port that accepts connections proves nothing: NAT, load
// balancers and hypervisors' port forwards (qemu's user-mode network)
// accept while the machine behind them is down, so only an SSH handshake
// within a few seconds counts as "up".
func waitRestart(ctx context.Context, t remote.Target, o remote.Options, key ssh.PublicKey, bootID string) (restart, ssh.PublicKey, error) {
	o.ExpectHostKey = key
	o.SSHOptions = append(append([]string(nil), o.SSHOptions...), "ConnectTimeout=5")
	for {
		c, err := remote.Dial(ctx, t, o)
		var hke *remote.HostKeyError
		switch {
		case errors.As(err, &hke):
			return restartOtherKey, hke.Key, nil
		case err != nil && ctx.Err() != nil:
			return restartDown, nil, ctx.Err()
		case err != nil:
			return restartDown, nil, nil
		}
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := c.User().Output(octx, "cat /proc/sys/kernel/random/boot_id")
		cancel()
		c.Close()
		if err == nil && bootID != "" && strings.TrimSpace(string(out)) != bootID {
			return restartNewBoot, key, nil
		}
		select {
		case <-ctx.Done():
			return restartDown, nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// sameBoot reports whether the target still runs the boot bootID, logging
// in with key pinned; false when it cannot tell (no login, no boot id).
// A machine told to reboot or kexec answers for a moment while it goes
// down, and a dropped probe in between looks like "down": only a new boot
// id proves the restart.
func sameBoot(ctx context.Context, t remote.Target, o remote.Options, key ssh.PublicKey, bootID string) bool {
	if bootID == "" || key == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	o.ExpectHostKey = key
	c, err := remote.Dial(ctx, t, o)
	if err != nil {
		return false
	}
	defer c.Close()
	out, err := c.User().Output(ctx, "cat /proc/sys/kernel/random/boot_id")
	return err == nil && strings.TrimSpace(string(out)) == bootID
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
