# nix/system-builds.nix (diskoImages, diskoImagesScript, installTest) with the
# STAND-IN package set of stand-in-pkgs.nix and no nixpkgs lib: what CI can
# evaluate. With diskoCompileDir (a directory with the REAL bin/disko-compile),
# diskoImages really builds, with the host's mkfs tools from /usr/bin; with
# anywhereDir (a directory with the REAL bin/anywhere), installTest runs it.
# vmSystem (a store path, a bootable system such as testvm's stand-in) is what
# vmWithDisko and installTest put on the VM's disks instead of the empty one.
{
  diskoCompileDir ? null,
  anywhereDir ? null,
  vmSystem ? null,
  layout,
  imageBuilder ? { },
}:
let
  pkgs = import ./stand-in-pkgs.nix {
    diskoCompile =
      if diskoCompileDir == null then
        null
      else
        builtins.path {
          path = diskoCompileDir;
          name = "disko-compile";
        };
  };
  package = pkgs.disko-compile or {
    name = "disko-compile";
    outPath = "/stand-in/disko-compile";
  };
  devices = import layout;
  # A store path standing in for config.system.build.toplevel.
  toplevel = builtins.toFile "nixos-system-stand-in" "";
in
import ../../../nix/system-builds.nix (
  {
    inherit pkgs package devices toplevel;
    anywhere =
      if anywhereDir == null then
        {
          name = "anywhere";
          outPath = "/stand-in/anywhere";
        }
      else
        builtins.path {
          path = anywhereDir;
          name = "anywhere";
        };
    vmCompiled = import ../../../nix/compile.nix {
      inherit pkgs package devices;
      name = "disko-vm";
    };
    vmToplevel = if vmSystem == null then toplevel else builtins.storePath vmSystem;
  }
  // imageBuilder
)
