# disko's image and VM-test outputs of `system.build`, built on the Go
# commands instead of disko's build VM and NixOS test driver:
#
#   diskoImages        a derivation: `disko-compile image` in the sandbox,
#                      one $out/<imageName>.<format> per disk
#   diskoImagesScript  the same command as a script run outside the sandbox,
#                      writing the images into the current directory and
#                      taking disko's flags (--pre-format-files,
#                      --post-format-files; --build-memory is ignored)
#   installTest        a script running `anywhere --vm-test` on the system
#                      and the disk script built for the VM's disks
#   vmWithDisko        a script building images of the VM's system (disks
#                      re-pointed at the VM's) and booting them in qemu (UEFI)
#
# Needs no nixpkgs `lib` (runCommand, runtimeShell, closureInfo and tools by
# name), so the builtins-only tests (internal/nixtest) evaluate it with
# their package stand-ins.
{
  pkgs,
  # The disko-compile package (runs at build time and in the script).
  package,
  # The anywhere package (runs in installTest).
  anywhere,
  # The devices tree, as disko.devices.
  devices,
  # The NixOS system put into the images (config.system.build.toplevel).
  toplevel,
  # disko.imageBuilder.*
  name ? "nixos-disko-images",
  imageFormat ? "raw",
  copyNixStore ? true,
  extraPostVM ? ":",
  extraDependencies ? [ ],
  # disko.memSize: the memory of vmWithDisko's VM, in MiB.
  memSize ? 1024,
  # installTest: the layout compiled (compile.nix) for the VM's disks
  # /dev/vda, /dev/vdb, ... in disk-name order, and the system built for them.
  vmCompiled,
  vmToplevel,
  # vmWithDisko's layout and system: the VM's with virtualisation.vmVariantWithDisko.
  vmWithDiskoCompiled ? vmCompiled,
  vmWithDiskoToplevel ? vmToplevel,
}:
let
  pure = import ./lib.nix;

  # Attribute names -> packages of this pkgs, leaving out the ones it lacks
  # (as compile.nix does): disko-compile names a missing tool with its package.
  resolve =
    names:
    builtins.filter (p: p != null && (p.meta.available or true)) (map (n: pkgs.${n} or null) names);

  # What `disko-compile image` runs: sfdisk and unshare (util-linux), parted,
  # sgdisk, the mkfs tools and their file-copying tools (mtools for vfat),
  # qemu-img for qcow2, nix-store to register the closure.
  imageTools = resolve [
    "util-linux"
    "parted"
    "gptfdisk"
    "e2fsprogs"
    "xfsprogs"
    "btrfs-progs"
    "dosfstools"
    "mtools"
    "f2fs-tools"
    "qemu-utils"
    "nix"
  ] ++ [ package ] ++ extraDependencies;

  layout = pure.toJSON devices;

  closure = pkgs.closureInfo { rootPaths = [ toplevel ]; };

  # `--system` and `--closure-info`, unless the store is not copied.
  systemArgs = if copyNixStore then "--system ${toplevel} --closure-info ${closure}" else "";

  imageCommand = "disko-compile image --format ${imageFormat} ${systemArgs}";

  layoutFile = pkgs.runCommand "disko-layout.json" {
    inherit layout;
    passAsFile = [ "layout" ];
  } ''cat "$layoutPath" > "$out"'';

  # A script file at $out (what writeShellScript makes, with runCommand only).
  script =
    scriptName: passthru: text:
    pkgs.runCommand scriptName {
      inherit text passthru;
      passAsFile = [ "text" ];
      meta.mainProgram = scriptName;
    } ''
      cat "$textPath" > "$out"
      chmod 0555 "$out"
    '';

  diskoImages = pkgs.runCommand name {
    nativeBuildInputs = imageTools;
    inherit layout extraPostVM;
    passAsFile = [ "layout" ];
  } ''
    # disko-compile reads a file as JSON by its name
    cp "$layoutPath" layout.json
    ${imageCommand} --out "$out" layout.json
    ${extraPostVM}
  '';

  diskoImagesScript = script "${name}-script" { } ''
    #!${pkgs.runtimeShell}
    # disko's diskoImagesScript: writes the images of the layout into the
    # current directory, outside the Nix sandbox.
    set -eu
    export PATH=${pure.binPath imageTools}''${PATH:+:$PATH}
    usage() {
      echo "usage: $0 [--pre-format-files SRC DST]... [--post-format-files SRC DST]... [--size NAME=SIZE]... [--build-memory MIB]"
      echo "Writes one image per disk (IMAGENAME.${imageFormat}) into the current directory with disko-compile image."
      echo "  --post-format-files SRC DST  copy SRC into the image at DST (an absolute path of the installed system)"
      echo "  --pre-format-files SRC DST   accepted for disko's command line; nothing reads them (no build VM)"
      echo "  --size NAME=SIZE             disk NAME's image size instead of its imageSize"
      echo "  --build-memory MIB           accepted for disko's command line and ignored (no build VM)"
    }
    bad() {
      usage >&2
      exit 2
    }
    args=()
    while [ "$#" -gt 0 ]; do
      case "$1" in
        --pre-format-files|--post-format-files)
          [ "$#" -ge 3 ] || bad
          args+=("$1" "$2" "$3")
          shift 3
          ;;
        --size)
          [ "$#" -ge 2 ] || bad
          args+=("$1" "$2")
          shift 2
          ;;
        --build-memory)
          [ "$#" -ge 2 ] || bad
          echo "$0: --build-memory $2 is ignored: the images are built without a VM" >&2
          shift 2
          ;;
        -h|--help)
          usage
          exit 0
          ;;
        *) bad ;;
      esac
    done
    exec ${imageCommand} "''${args[@]}" --out . ${layoutFile}
  '';

  # The VM's UEFI firmware from nixpkgs (Debian's /usr/share/OVMF is not on
  # NixOS); left to anywhere's own search where pkgs has no OVMF.
  ovmfExport =
    if pkgs ? OVMF then "export DISKOANYWHERE_OVMF_DIR=${pkgs.OVMF.fd}/FV" else "";

  # disko's vmWithDisko: the images of the VM's system (its disks re-pointed at
  # the VM's, /dev/vda, ... as installTest's, plus the module's
  # virtualisation.vmVariantWithDisko), with the closure and the
  # bootloader in them (`disko-compile image --system`, no VM, no root), in a
  # temporary directory removed when qemu exits; qemu boots them with UEFI
  # firmware on the terminal (-nographic). Extra arguments go to qemu.
  vmClosure = pkgs.closureInfo { rootPaths = [ vmWithDiskoToplevel ]; };
  vmWithDisko = script "disko-vm" { } ''
    #!${pkgs.runtimeShell}
    set -eu
    export PATH=${pure.binPath (imageTools ++ resolve [ "qemu" ])}''${PATH:+:$PATH}
    ${ovmfExport}
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    disko-compile image --format ${imageFormat} --system ${vmWithDiskoToplevel} --closure-info ${vmClosure} --out "$tmp" ${vmWithDiskoCompiled}/layout.json >/dev/null
    code=
    for dir in ''${DISKOANYWHERE_OVMF_DIR:-} /usr/share/OVMF; do
      for name in OVMF_CODE.fd OVMF_CODE_4M.fd; do
        if [ -z "$code" ] && [ -f "$dir/$name" ]; then
          code=$dir/$name
          cp "$dir/''${name/CODE/VARS}" "$tmp/vars.fd"
          chmod u+w "$tmp/vars.fd"
        fi
      done
    done
    if [ -z "$code" ]; then
      echo "$0: no UEFI firmware (OVMF_CODE.fd): set DISKOANYWHERE_OVMF_DIR to a directory with OVMF_CODE.fd and OVMF_VARS.fd" >&2
      exit 1
    fi
    # KVM when it works, else TCG; DISKOANYWHERE_TESTVM_ACCEL=tcg|kvm chooses
    # (a /dev/kvm can exist and hang a guest).
    case ''${DISKOANYWHERE_TESTVM_ACCEL:-auto} in
      tcg | kvm) accel=$DISKOANYWHERE_TESTVM_ACCEL ;;
      *) accel=kvm:tcg ;;
    esac
    drives=()
    for image in "$tmp"/*.${imageFormat}; do
      drives+=(-drive "file=$image,if=virtio,format=${imageFormat}")
    done
    qemu-system-x86_64 -machine "q35,accel=$accel" -m ${toString memSize} -smp 2 \
      -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" \
      -drive "if=pflash,format=raw,unit=1,file=$tmp/vars.fd" \
      "''${drives[@]}" -nic user,model=virtio-net-pci -nographic "$@"
  '';

  installTest = script "disko-install-test" { inherit vmCompiled; } ''
    #!${pkgs.runtimeShell}
    # disko's installTest: installs the system into a throwaway qemu VM
    # (UEFI) with `anywhere --vm-test`, then checks it boots and mounts the
    # layout. Extra arguments go to anywhere (--kexec TARBALL, --vm-memory MB).
    set -eu
    export PATH=${pure.binPath (resolve [ "qemu" "nix" "openssh" ] ++ [ anywhere ])}''${PATH:+:$PATH}
    ${ovmfExport}
    exec anywhere --vm-test --store-paths ${vmCompiled.scripts.diskoScript} ${vmToplevel} --disko-layout ${vmCompiled}/layout.json "$@"
  '';
in
{
  inherit diskoImages diskoImagesScript installTest vmWithDisko;
}
