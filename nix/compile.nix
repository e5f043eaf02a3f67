# Compile a disk layout with `disko-compile` inside derivations.
#
# Shared by the NixOS module and the flake's `lib.compile`, so a layout gives
# the same scripts with or without a NixOS system. Needs only a few attributes
# of `pkgs` (runCommand, runtimeShell, shellcheck, jq, diffutils and the
# disk tools by name) and no nixpkgs `lib`.
{
  pkgs,
  # The disko-compile package (runs at build time).
  package,
  # `{ disko.devices = ...; }`, the bare devices tree, or the option's value.
  devices,
  rootMountPoint ? "/mnt",
  # Run shellcheck on every script while building them (disko.checkScripts).
  checkScripts ? false,
  name ? "disko",
}:
let
  pure = import ./lib.nix;

  layout = pure.toJSON devices;

  # Attribute names -> packages of this pkgs; names this nixpkgs lacks or
  # marks unavailable on the platform (zfs on some, bcachefs-tools on old
  # releases) are left out: the scripts then find the tool on PATH, if at all.
  resolve =
    names:
    builtins.filter (p: p != null && (p.meta.available or true)) (map (n: pkgs.${n} or null) names);
  tools = resolve (pure.toolsFor devices);
  destroyTools = resolve (pure.destroyToolsFor devices);

  destroying = [
    "destroy.sh"
    "destroy-format-mount.sh"
  ];

  # The NixOS config alone: what import-from-derivation has to build at
  # evaluation time, so it depends on the compiler only, not on the tools.
  # resolved.json is the layout with every default applied (`disko-compile
  # json`): the computed defaults the module shows in config.disko.devices.
  nixosConfig = pkgs.runCommand "${name}-nixos-config" {
    nativeBuildInputs = [ package ];
    inherit layout;
    passAsFile = [ "layout" ];
  } ''
    mkdir -p "$out"
    cp "$layoutPath" "$out/layout.json"
    disko-compile nixos-config "$out/layout.json" > "$out/nixos-config.json"
    disko-compile nixos-config --nix "$out/layout.json" > "$out/nixos-config.nix"
    disko-compile json "$out/layout.json" > "$out/resolved.json"
  '';

  # All scripts in two variants: deps/ (tools by store path, bash from the
  # store) and nodeps/ (tools by plain name, `#!/usr/bin/env bash`), plus the
  # NixOS config files for standalone users.
  compiled = pkgs.runCommand "${name}-compiled" {
    nativeBuildInputs = [ package ] ++ (if checkScripts then [ pkgs.shellcheck ] else [ ]);
    inherit layout rootMountPoint;
    passAsFile = [ "layout" ];
    toolsPath = pure.binPath tools;
    destroyToolsPath = pure.binPath destroyTools;
    storeShell = pkgs.runtimeShell;
    scriptFiles = map (m: m.file) pure.modes;
    destroyFiles = destroying;
    inherit checkScripts;
    passthru = {
      inherit nixosConfig scripts checkGenerated;
      layout = pure.normalize devices;
    };
  } ''
    set -eu
    mkdir -p "$out/deps" "$out/nodeps"
    cp "$layoutPath" "$out/layout.json"
    compile() {
      disko-compile scripts --root-mountpoint "$rootMountPoint" "$@" "$out/layout.json"
    }
    compile --out "$out/nodeps"
    compile --path "$toolsPath" --out deps
    compile --path "$destroyToolsPath" --out destroy-deps
    for f in $destroyFiles; do cp destroy-deps/"$f" deps/"$f"; done
    for f in $scriptFiles; do
      for s in deps/"$f" "$out/nodeps/$f"; do
        if [ ! -f "$s" ]; then
          echo "disko-compile scripts did not write $f" >&2
          exit 1
        fi
      done
      first=$(head -n 1 deps/"$f")
      case "$first" in
        '#!'*bash*) ;;
        *) echo "deps/$f: expected a bash shebang, found: $first" >&2; exit 1 ;;
      esac
      { echo "#!$storeShell"; tail -n +2 deps/"$f"; } > "$out/deps/$f"
      chmod 0555 "$out/deps/$f" "$out/nodeps/$f"
    done
    disko-compile nixos-config "$out/layout.json" > "$out/nixos-config.json"
    disko-compile nixos-config --nix "$out/layout.json" > "$out/nixos-config.nix"
    if [ "$checkScripts" = 1 ]; then
      cores=''${NIX_BUILD_CORES:-0}
      [ "$cores" -gt 0 ] || cores=$(nproc)
      for f in $scriptFiles; do
        printf '%s\n' "$out/deps/$f" "$out/nodeps/$f"
      done | xargs -P "$cores" -n 1 shellcheck
    fi
  '';

  # One package per mode and variant: $out/bin/disko-<mode>, like disko.
  binScript =
    variant: m:
    pkgs.runCommand m.bin {
      meta.mainProgram = m.bin;
      # (not `src`/`bin`: stdenv gives those names a meaning)
      script = "${compiled}/${pure.scriptFile variant m}";
      binName = m.bin;
    } ''
      mkdir -p "$out/bin"
      cp "$script" "$out/bin/$binName"
      chmod 0555 "$out/bin/$binName"
    '';

  byAttr = variant: builtins.listToAttrs (map (m: { name = m.attr; value = binScript variant m; }) pure.modes);
  withDeps = byAttr "deps";
  noDeps = byAttr "nodeps";

  modeByAttr = builtins.listToAttrs (map (m: { name = m.attr; value = m; }) pure.modes);

  # The legacy outputs are the script itself at $out. The destroying ones
  # skip the confirmation, as disko's legacy destroy did.
  legacyScript =
    variant: targets: l:
    pkgs.runCommand l.name {
      interpreter = if variant == "deps" then pkgs.runtimeShell else "/usr/bin/env bash";
      exe = "${targets.${l.target}}/bin/${modeByAttr.${l.target}.bin}";
      # not `args`: that attribute is the builder's argv
      wrapperArgs = builtins.concatStringsSep " " l.args;
    } ''
      { echo "#!$interpreter"; echo "exec $exe $wrapperArgs \"\$@\""; } > "$out"
      chmod 0555 "$out"
    '';

  legacy =
    variant: targets:
    builtins.listToAttrs (
      map (l: {
        name = if variant == "deps" then l.attr else pure.noDepsAttr l.attr;
        value = legacyScript variant targets l;
      }) pure.legacyScripts
    );

  scripts =
    withDeps
    // builtins.listToAttrs (map (a: { name = pure.noDepsAttr a; value = noDeps.${a}; }) (builtins.attrNames noDeps))
    // legacy "deps" withDeps
    // legacy "nodeps" noDeps;

  # Build-time check for the IFD-free path: the imported generated file must
  # equal, as values, what disko-compile gives for the current layout.
  checkGenerated =
    file:
    pkgs.runCommand "${name}-generated-config-check" {
      nativeBuildInputs = [
        package
        pkgs.jq
        pkgs.diffutils
      ];
      inherit layout;
      generated = builtins.toJSON (import file);
      passAsFile = [
        "layout"
        "generated"
      ];
      hint = pure.regenerateHint (pure.storeBaseName file);
    } ''
      cp "$layoutPath" layout.json
      disko-compile nixos-config layout.json > current.raw.json
      jq -S . current.raw.json > current.json
      jq -S . "$generatedPath" > generated.json
      if ! diff -u generated.json current.json > changes.diff; then
        echo "$hint" >&2
        echo "Differences (- generated file, + current layout):" >&2
        cat changes.diff >&2
        exit 1
      fi
      cp current.json "$out"
    '';
in
compiled
