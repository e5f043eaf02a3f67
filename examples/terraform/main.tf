# A fleet of two machines from one flake (./flake.nix), installed with the
# anywhere provider. With the provider built and a CLI configuration whose
# dev_overrides point at it (README, "Terraform and OpenTofu"):
#
#   terraform validate
#   terraform plan     # contacts nothing: two creates
#   terraform apply    # installs both machines in parallel
#
# After that, a change to a machine's NixOS configuration shows as an update of
# that machine only; apply deploys it without touching its disks. A change of
# the layout replaces the machine (reinstall), and the plan says so.

terraform {
  required_version = ">= 1.11" # ssh_private_key is write-only: never stored in the state
  required_providers {
    anywhere = {
      source = "registry.terraform.io/diskoanywhere/anywhere"
    }
  }
}

variable "machines" {
  description = "The fleet: flake output name => address, pinned host key and disk device."
  type = map(object({
    host     = string
    host_key = optional(string) # null: accept the key seen at create, then pinned in the state
    disk     = string
  }))
  default = {
    web1 = { host = "192.0.2.11", disk = "/dev/vda" }
    web2 = { host = "192.0.2.12", disk = "/dev/nvme0n1" }
  }
}

variable "ssh_private_key" {
  description = "Private key to log in with; null uses ssh-agent and ~/.ssh."
  type        = string
  default     = null
  sensitive   = true
}

# What the layout mounts, for outputs and checks; runs Nix locally, contacts nothing.
data "anywhere_disko_layout" "fleet" {
  for_each = var.machines
  layout   = "${path.module}/disk-config.nix"
  disks    = { main = each.value.disk }
}

resource "anywhere_install" "machine" {
  for_each = var.machines

  target_host     = "root@${each.value.host}"
  host_key        = each.value.host_key
  ssh_private_key = var.ssh_private_key

  flake        = "${path.module}#${each.key}"
  disko_layout = data.anywhere_disko_layout.fleet[each.key].layout
  disks        = data.anywhere_disko_layout.fleet[each.key].disks
}

output "mount_points" {
  description = "What each machine mounts where: mount point => file system type."
  value = {
    for name, l in data.anywhere_disko_layout.fleet : name => { for mp, fs in l.file_systems : mp => fs.fs_type }
  }
}

output "systems" {
  description = "The NixOS system each machine runs."
  value       = { for name, m in anywhere_install.machine : name => m.system }
}
