# Reads config, which only a NixOS evaluation has.
{ config, ... }:
{
  disko.devices.disk.main.device = config.boot.rootDevice;
}
