# config.disko.devices of a layout as nix-community/disko's own types compute
# it (disko's source at diskoSrc, nixpkgs lib at libPath), as plain data:
# disko's internal `_…` options, functions and packages dropped. The oracle
# of TestDefaultsEqualDisko; disko's source is only read, never committed.
{
  libPath,
  diskoSrc,
  layout,
}:
let
  lib = import libPath;
  diskoLib = import (diskoSrc + "/lib") {
    inherit lib;
    makeTest = null;
    eval-config = null;
    qemu-common = null;
  };
  l = import layout;
  value = if builtins.isFunction l then l { inherit lib; } else l;
  ev = lib.evalModules {
    modules = [
      {
        options.disko.devices = lib.mkOption {
          type = diskoLib.toplevel;
          default = { };
        };
      }
      value
    ];
  };
  plain =
    v:
    if builtins.isAttrs v then
      if v ? outPath || v ? _type then
        null
      else
        lib.mapAttrs (_: plain) (lib.filterAttrs (n: x: !(lib.hasPrefix "_" n) && !(builtins.isFunction x)) v)
    else if builtins.isList v then
      map plain v
    else if builtins.isFunction v then
      null
    else
      v;
in
plain ev.config.disko.devices
