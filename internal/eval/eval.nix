# The Nix half of internal/eval, run as `nix-instantiate --eval --strict --json -E`.
#
# It loads a layout (a file, or a flake output), calls it when it is a function, and
# returns only the disko.devices subtree, so that Nix converts nothing else to JSON.
# Problems it can name itself are thrown as "diskoeval:KIND:JSON" and the Go side turns
# them into messages; every other error is Nix's own.
#
# __diskoEval is a JSON object: { file | flake + name, lib, deviceKeys }. Every other
# argument is a user's --arg/--argstr and goes to the layout function.
{ __diskoEval, ... }@args:
let
  req = builtins.fromJSON __diskoEval;
  userArgs = removeAttrs args [ "__diskoEval" ];
  fail = kind: payload: throw "diskoeval:${kind}:${builtins.toJSON payload}";

  # nixpkgs' lib: --nixpkgs (resolved to a lib directory by Go), else <nixpkgs/lib>.
  searchPathLib = builtins.tryEval (builtins.findFile builtins.nixPath "nixpkgs/lib");
  haveLib = req.lib != "" || searchPathLib.success;
  lib =
    if req.lib != "" then import req.lib
    else if searchPathLib.success then import searchPathLib.value
    else fail "needs-lib" null;

  # Arguments a NixOS module gets but a layout file cannot: harmless while unused.
  moduleArgs = [ "config" "options" "pkgs" "modulesPath" ];

  # Call a layout function the way disko does: lib, the function's own defaults, and
  # the user's arguments (which win). A `lib ? ...` default is kept when no lib is found.
  call = f:
    if !builtins.isFunction f then f
    else
      let
        formals = builtins.functionArgs f;
        wanted = n:
          (n == "lib" && (haveLib || !formals.lib))
          || (builtins.elem n moduleArgs && !formals.${n});
        given = builtins.listToAttrs (map
          (n: { name = n; value = if n == "lib" then lib else fail "module-arg" n; })
          (builtins.filter wanted (builtins.attrNames formals)));
      in
      f (given // userArgs);

  isDevicesSet = v:
    v != { } && builtins.all (k: builtins.elem k req.deviceKeys) (builtins.attrNames v);

  # { disko.devices = ...; } or a bare devices set; anything else is named in the error.
  unwrap = v:
    if !builtins.isAttrs v then fail "shape" { type = builtins.typeOf v; }
    else if v ? imports then fail "module" null
    else if v ? disko then
      (if builtins.isAttrs v.disko && v.disko ? devices then
        (if builtins.isAttrs v.disko.devices then v.disko.devices
        else fail "shape" { type = builtins.typeOf v.disko.devices; key = "disko.devices"; })
      else fail "shape" {
        keys = if builtins.isAttrs v.disko then map (k: "disko.${k}") (builtins.attrNames v.disko) else [ "disko" ];
      })
    else if isDevicesSet v then v
    else fail "shape" { keys = builtins.attrNames v; };

  # Option values from a NixOS evaluation carry the module system's internals
  # (_module, and disko's _meta/_create/... which hold functions): drop them.
  dropInternal = v:
    if builtins.isAttrs v then
      builtins.mapAttrs (_: dropInternal)
        (removeAttrs v (builtins.filter (n: builtins.substring 0 1 n == "_") (builtins.attrNames v)))
    else if builtins.isList v then map dropInternal v
    else v;

  fromFlake =
    let
      outputs = (builtins.getFlake req.flake).outputs;
      name = req.name;
    in
    if outputs ? diskoConfigurations.${name} then unwrap (call outputs.diskoConfigurations.${name})
    else if outputs ? nixosConfigurations.${name} then
      let config = outputs.nixosConfigurations.${name}.config; in
      if config ? disko.devices then dropInternal config.disko.devices
      else fail "no-disko-option" null
    else fail "no-config" {
      disko = builtins.attrNames (outputs.diskoConfigurations or { });
      nixos = builtins.attrNames (outputs.nixosConfigurations or { });
    };
  # A path value (keyFile = ./secret.key) becomes the file's own absolute path, as
  # nix/lib.nix does for the module: --eval would print a store path it never copies,
  # which no script could read, and copying a secret into the world-readable store
  # would be worse. Derivations stay as they are (printed as their store path).
  plainPaths = v:
    if builtins.isPath v then toString v
    else if builtins.isAttrs v && !(v ? outPath) then builtins.mapAttrs (_: plainPaths) v
    else if builtins.isList v then map plainPaths v
    else v;
in
plainPaths (if req ? flake then fromFlake else unwrap (call (import req.file)))
