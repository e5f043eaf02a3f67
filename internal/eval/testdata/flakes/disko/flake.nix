# A flake without inputs offering layouts the way disko's diskoConfigurations do.
{
  outputs = { self }: {
    diskoConfigurations.demo = import ./disk.nix;
    # A function, called with its defaults and the user's --arg/--argstr.
    diskoConfigurations.sized = { size ? "1G", ... }: {
      disko.devices.disk.main = {
        device = "/dev/vda";
        type = "disk";
        content = { type = "gpt"; partitions.root.size = size; };
      };
    };
  };
}
