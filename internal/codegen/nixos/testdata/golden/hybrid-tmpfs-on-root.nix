# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    loader = {
      grub = {
        devices = [
          "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K303456L"
        ];
      };
    };
  };
  fileSystems = {
    "/" = {
      device = "tmpfs";
      fsType = "tmpfs";
      options = [
        "size=2G"
        "defaults"
        "mode=755"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-main-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
    "/nix" = {
      device = "/dev/disk/by-partlabel/disk-main-nix";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
  };
  swapDevices = [ ];
}
