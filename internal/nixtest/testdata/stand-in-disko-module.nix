# STAND-IN for nix-community/disko's module.nix: it declares disko's options
# (two of them here, with defaults and descriptions as disko does), which is
# what makes importing it next to nix/module.nix an error.
{ lib, ... }:
{
  options.disko = {
    devices = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      default = { };
      description = "The devices to set up";
    };
    rootMountPoint = lib.mkOption {
      type = lib.types.str;
      default = "/mnt";
      description = "Where the device tree should be mounted by the mountScript";
    };
  };
}
