# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    initrd = {
      luks = {
        devices = {
          p1 = {
            allowDiscards = true;
            device = "/dev/disk/by-partlabel/disk-disk1-crypt_p1";
            keyFile = "/tmp/secret.key";
          };
          p2 = {
            allowDiscards = true;
            device = "/dev/disk/by-partlabel/disk-disk2-crypt_p2";
            keyFile = "/tmp/secret.key";
          };
        };
      };
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/mapper/p2";
      fsType = "btrfs";
      options = [
        "rw"
        "relatime"
        "ssd"
        "subvol=/root"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-disk1-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
  };
  swapDevices = [ ];
}
