// Package images holds what goes onto the EC2 instances: the EC2 Image
// Builder component of the worker AMI, the agents' systemd units, the boot
// scripts and the cloud-init templates of the worker and the web host. The
// stack renders them with the deployment's queue URLs, bucket names and
// artifact hashes; they are embedded so the rendering needs no files beside
// the program.
package images

import "embed"

// FS holds every file of this directory the stack renders.
//
//go:embed worker/component.yaml systemd/*.service scripts/*.sh cloud-init/*.yaml.tmpl logrotate/facecloud
var FS embed.FS
