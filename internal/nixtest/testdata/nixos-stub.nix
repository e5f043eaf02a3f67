# STAND-IN for the few NixOS options nix/module.nix writes to (fileSystems,
# swapDevices, boot, networking, system.build, system.checks, assertions).
# NOT NixOS: the types are looser (plain data), enough to see what the
# module defines. Evaluated with the REAL nixpkgs lib (NIXPKGS_LIB).
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    fileSystems = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    swapDevices = mkOption {
      type = types.listOf types.anything;
      default = [ ];
    };
    boot = mkOption {
      type = types.anything;
      default = { };
    };
    networking = mkOption {
      type = types.anything;
      default = { };
    };
    system.build = mkOption {
      type = types.lazyAttrsOf types.unspecified;
      default = { };
    };
    system.checks = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
  };
}
