# disko's own format script (its _create) for a layout file, with each disk's device
# replaced: nix-instantiate --eval --strict --json disko-create.nix --arg nixpkgsLib
# PATH --arg disko PATH --arg file PATH --arg devices '{ main = "/dev/vda"; }'
{ nixpkgsLib, disko, file, devices }:
let
  lib = import nixpkgsLib;
  diskoLib = import disko { inherit lib; };
  raw = import file;
  cfg = if builtins.isFunction raw then raw { inherit lib; } else raw;
  onDevices = lib.recursiveUpdate cfg {
    disko.devices.disk = lib.mapAttrs (_: device: { inherit device; }) devices;
  };
in
diskoLib.create onDevices
