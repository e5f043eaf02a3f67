# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = { };
  fileSystems = {
    "/a" = {
      device = "/dev/disk/by-partlabel/disk-disk0-nix";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/b" = {
      device = "/dev/disk/by-partlabel/disk-disk1-root";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
  };
  swapDevices = [ ];
}
