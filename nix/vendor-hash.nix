# The vendorHash of the Go module (SRI sha256 of `go mod vendor`), or null
# when no dependency is vendored. Checked by internal/nixtest (TestVendorHash);
# re-pin with: go test ./internal/nixtest -run TestVendorHash -update
"sha256-XWvvA5VbZRceDM1yydKNh6RQDM1x6iXcVKXDx39pp7E="
