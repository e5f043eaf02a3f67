# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    loader = {
      grub = {
        devices = [
          "/dev/my-disk"
          "/dev/my-disk2"
        ];
      };
    };
    swraid = {
      enable = true;
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-id/md-name-any:raid1-part1";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
  };
  swapDevices = [ ];
}
