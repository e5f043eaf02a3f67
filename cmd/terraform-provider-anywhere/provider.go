package main

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// anywhereProvider is the provider "anywhere". It has no settings of its own: every
// connection detail belongs to a resource, so one configuration can reach many hosts.
type anywhereProvider struct {
	version string
}

// newProvider returns the constructor providerserver.Serve calls for each session.
func newProvider(version string) func() provider.Provider {
	return func() provider.Provider { return &anywhereProvider{version: version} }
}

// resources lists the resource constructors of this provider; each resource lives in its
// own resource_*.go file, whose init adds it here.
var resources = []func() resource.Resource{}

// dataSources lists the data source constructors of this provider.
var dataSources = []func() datasource.DataSource{newLayoutDataSource}

func (p *anywhereProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "anywhere"
	resp.Version = p.version
}

func (p *anywhereProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Installs NixOS on machines over SSH and compiles disko layouts, " +
			"on the same Go code as the anywhere and disko-compile commands.",
	}
}

func (p *anywhereProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *anywhereProvider) Resources(context.Context) []func() resource.Resource {
	return resources
}

func (p *anywhereProvider) DataSources(context.Context) []func() datasource.DataSource {
	return dataSources
}
