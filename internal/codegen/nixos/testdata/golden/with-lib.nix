# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    loader = {
      grub = {
        devices = [
          "/dev/vdb"
        ];
      };
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-partlabel/disk-_dev_vdb-root";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
  };
  swapDevices = [ ];
}
