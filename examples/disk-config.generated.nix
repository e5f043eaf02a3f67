# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    initrd = {
      kernelModules = [
        "dm-snapshot"
      ];
      luks = {
        devices = {
          crypted = {
            allowDiscards = true;
            device = "/dev/disk/by-partlabel/disk-main-luks";
            keyFile = "/tmp/secret.key";
          };
        };
      };
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/pool/root";
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
    "/home" = {
      device = "/dev/pool/home";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
  };
  swapDevices = [ ];
}
