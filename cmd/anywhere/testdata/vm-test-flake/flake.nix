# The flake of `anywhere --vm-test --flake DIR#host` in TestVMTestFlake.
#
# STAND-IN for a NixOS configuration: nixpkgs cannot be fetched here, so
# nixosConfigurations.host is not made by nixpkgs.lib.nixosSystem but is an
# attribute set with the two options anywhere reads from a configuration:
#   - config.disko.devices: the layout (./layout.nix, a copy of
#     testdata/vm-test-layout.nix);
#   - config.system.build.toplevel: the stand-in NixOS system of
#     internal/testvm as a derivation, imported from ./system/default.nix (a
#     copy of the directory it was built from), so Nix evaluates and builds it
#     as it would a real toplevel (pure evaluation refuses
#     builtins.storePath of a prebuilt one).
# The test copies this file, the layout and the system's sources into a
# temporary directory (not a git work tree, so all files are seen).
{
  description = "anywhere --vm-test --flake test: stand-in NixOS configuration";

  outputs = _: {
    nixosConfigurations.host.config = {
      inherit (import ./layout.nix) disko;
      system.build.toplevel = (import ./system/default.nix).toplevel;
    };
  };
}
