# The Go binaries as a Nix package. Imported (not callPackage'd) so the
# module, the flake and non-flake users build the very same derivation.
{
  pkgs,
  # Which cmd/ directories to build; all four by default.
  commands ? [
    "disko"
    "disko-install"
    "disko-compile"
    "anywhere"
  ],
  pname ? "diskoanywhere",
  # Run `go test` on the built packages. Off for the packages: the tests need
  # root, loop devices, Nix and qemu (.ci/run runs them).
  doCheck ? false,
}:
let
  pure = import ./lib.nix;
  root = ../.;
  goVersion = pure.goVersion (builtins.readFile (root + "/go.mod"));
  # nixpkgs' builder for the Go release go.mod asks for; the default one
  # when this nixpkgs has no versioned builder for it.
  buildGoModule = pkgs.${pure.goModuleBuilderName goVersion} or pkgs.buildGoModule;
  withVMTools = builtins.elem "anywhere" commands && pkgs.stdenv.hostPlatform.isLinux;
  # anywhere and disko-install reach SSH targets by the host names users type, which
  # only libc's resolver (cgo) looks up through every name service (mDNS, LDAP hosts).
  # disko and disko-compile look up no host name (vm-test dials 127.0.0.1), so they are
  # built without cgo: a static binary starts without the dynamic loader, about 0.3-0.5 ms
  # of each disko-compile run, which tools like disko's compile call once per layout
  # (issue 18 item 1). A package holding both kinds builds all of them with cgo.
  needsCgo = builtins.any (c: builtins.elem c [ "anywhere" "disko-install" ]) commands;
in
buildGoModule {
  inherit pname doCheck;
  inherit (pure) version;
  src = builtins.path {
    path = root;
    name = "diskoanywhere-source";
    filter = pure.sourceFilter (toString root);
  };
  vendorHash = import ./vendor-hash.nix;
  subPackages = map (c: "cmd/${c}") commands;
  ldflags = [
    "-s"
    "-w"
  ];
  # urfave/cli's man-page and Markdown writers are unused; without them blackfriday is
  # not linked, whose start-up cost every disko-compile run paid (issue 18 item 1).
  tags = [ "urfave_cli_no_docs" ];
  env.CGO_ENABLED = if needsCgo then 1 else 0;
  # anywhere --vm-test runs qemu and UEFI firmware: carry them, after the
  # user's PATH so that a qemu of their own still wins.
  nativeBuildInputs = if withVMTools then [ pkgs.makeWrapper ] else [ ];
  postInstall =
    if withVMTools then
      ''
        wrapProgram $out/bin/anywhere \
          --suffix PATH : ${pkgs.qemu_kvm}/bin \
          --set-default DISKOANYWHERE_OVMF_DIR ${pkgs.OVMF.fd}/FV
      ''
    else
      "";
  meta = {
    description = "Declarative disk layouts compiled to scripts and NixOS config (disko-compatible), and remote NixOS installs over SSH";
    mainProgram = builtins.head commands;
  };
}
