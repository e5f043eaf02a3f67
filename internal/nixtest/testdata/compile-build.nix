# nix/compile.nix with the REAL disko-compile (diskoCompileDir/bin/disko-compile) and
# the STAND-IN package set of stand-in-pkgs.nix (real derivations built with the
# host's /bin/bash; disk tools are fake store paths that only appear in PATH lines).
{
  diskoCompileDir,
  layout,
  checkScripts ? false,
  rootMountPoint ? "/mnt",
}:
let
  pkgs = import ./stand-in-pkgs.nix {
    diskoCompile = builtins.path {
      path = diskoCompileDir;
      name = "disko-compile";
    };
  };
  compiled = import ../../../nix/compile.nix {
    inherit pkgs checkScripts rootMountPoint;
    package = pkgs.disko-compile;
    devices = import layout;
  };
  pure = import ../../../nix/lib.nix;
in
{
  inherit compiled;
  inherit (compiled) nixosConfig checkGenerated;
  scripts = compiled.scripts;
  toolsPath = pure.binPath (map (n: pkgs.${n}) (pure.toolsFor (import layout)));
  destroyToolsPath = pure.binPath (map (n: pkgs.${n}) (pure.destroyToolsFor (import layout)));
  layoutJSON = pure.toJSON (import layout);
}
