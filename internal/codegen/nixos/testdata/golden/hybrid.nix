# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    loader = {
      grub = {
        devices = [
          "/dev/disk/by-id/ata-Samsung_SSD_850_EVO_250GB_S21PNXAGB12345"
        ];
      };
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-partlabel/disk-main-root";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-main-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
  };
  swapDevices = [ ];
}
