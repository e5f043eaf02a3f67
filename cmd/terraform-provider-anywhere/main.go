// Command terraform-provider-anywhere is a Terraform/OpenTofu provider on the same Go
// packages as disko-compile and anywhere, so fleets get a real plan, state and drift
// instead of nixos-anywhere's null_resource + local-exec wrappers.
//
// Terraform starts this binary itself (through the registry, or dev_overrides in a
// TF_CLI_CONFIG_FILE); main only serves the provider over the plugin protocol.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

// providerAddress is the address users write in required_providers; dev_overrides map it
// to a locally built binary.
const providerAddress = "registry.terraform.io/diskoanywhere/anywhere"

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	debug := flag.Bool("debug", false, "serve for a debugger (prints TF_REATTACH_PROVIDERS)")
	flag.Parse()
	err := providerserver.Serve(context.Background(), newProvider(version), providerserver.ServeOpts{
		Address: providerAddress,
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
