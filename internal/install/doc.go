// Package install is the executor of `anywhere`: it connects to a target,
// gathers its facts, builds (or compiles) what is to be installed, prints a
// plan, and runs the phases kexec, disko, install and reboot as separate,
// resumable steps recorded in a local state file.
//
// It does what nixos-anywhere's script (src/nixos-anywhere.sh upstream) does,
// phase by phase, with these differences on purpose:
//
//   - host keys are verified: the installer a kexec boots must present the
//     key the target had before (nixos-images' kexec/run carries it over),
//     and after the reboot the new system must answer with the expected
//     key (or its key is shown, unverified, when the installed system
//     generates its own);
//   - a kexec that would fail or hang the machine is refused before
//     anything changes (too little RAM for the tarball, a container, a
//     kernel without kexec or locked down), and every wait has a deadline
//     and checks SSH (a new boot id), not just an open TCP port;
//   - a re-run after a failure resumes: phases already done with the same
//     inputs are skipped, a half-copied closure continues where it stopped,
//     and the filesystems are mounted again when needed;
//   - the closure is shipped over our own SSH session with Nix's serve
//     protocol (package closure), not by `nix copy` and an ssh binary;
//   - the disk script can be compiled in-process from a layout
//     (--disko-layout), without building a NixOS system;
//   - secrets (disk keys, passwords) travel on stdin only: never in argv, in
//     output (a redactor blanks them) or in the Nix store.
package install
