// Package remote is the installer's only way to reach a target machine: an SSH
// client built on golang.org/x/crypto/ssh (no ssh binary), with OpenSSH-style
// configuration (ssh_config, ProxyJump, identities, agent), host keys verified
// against known_hosts or pinned, keepalives, deadlines on every wait,
// privilege escalation through sudo or doas with secrets fed on stdin, and
// verified uploads of files and directory trees.
//
// Unlike nixos-anywhere, host keys are never ignored and every built-in
// default can be overridden with an --ssh-option KEY=VALUE. Every OpenSSH
// client option is classified in one table (sshOptions in options.go) that
// applies to --ssh-option and ssh_config alike: honoured, ignored with a
// reason (multiplexing, logging, forwarding: nothing a built-in client
// does), or refused where ignoring it would change security or where the
// connection goes (ProxyCommand, RevokedHostKeys, BindAddress, …).
package remote
