# A flake without inputs whose nixosConfigurations mimic what a NixOS evaluation gives:
# plain attribute sets standing in for config, including the module system's internal
# attributes (_module, disko's _meta) that must not reach the JSON.
{
  outputs = { self }: {
    nixosConfigurations.host.config = {
      networking.hostName = "host";
      disko.devices = {
        _module.args = { };
        disk.main = {
          device = "/dev/vda";
          type = "disk";
          _meta = dev: { };
          content = { type = "gpt"; partitions.ESP = { size = "500M"; type = "EF00"; }; };
        };
      };
    };
    # A NixOS configuration that does not import any disko module.
    nixosConfigurations.plain.config.networking.hostName = "plain";
    # diskoConfigurations.NAME wins over nixosConfigurations.NAME, as in disko.
    diskoConfigurations.both.disko.devices.disk.fromDisko.device = "/dev/vda";
    nixosConfigurations.both.config.disko.devices.disk.fromNixos.device = "/dev/vdb";
  };
}
