// Package projectfn assembles the project service the chat and stream
// functions share (the auth function links none of it): the KMS client the
// tokens are sealed with, and the git and S3 work of conversations on a
// project.
package projectfn

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/ovrlrd/cloud/internal/api"
	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/envelope"
	"github.com/ovrlrd/cloud/internal/project"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// As in package app: each implementation against its consumer's interface.
var (
	_ project.Store  = (*store.Store)(nil)
	_ project.Sealer = (*envelope.Sealer)(nil)
	_ project.Files  = (*workspace.Store)(nil)
	_ api.Projects   = (*project.Service)(nil)
)

// New returns the project service, or nil when the configuration names no
// KMS key (a local server without one: it serves no project routes). A
// nil kmsClient is AWS KMS's, the deployed one; make dev gives its own.
func New(a *app.App, files *workspace.Store, kmsClient envelope.KMS) *project.Service {
	cfg := a.Config
	if !cfg.ProjectsEnabled() {
		return nil
	}
	if kmsClient == nil {
		kmsClient = kms.NewFromConfig(a.AWS, func(o *kms.Options) {
			if cfg.Projects.KMSEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Projects.KMSEndpoint)
			}
		})
	}
	return project.New(project.Options{
		Store: a.Store, Sealer: envelope.New(kmsClient, cfg.Projects.KMSKeyID), Files: files,
		MaxBytes: cfg.Projects.MaxBytes, WorkMaxBytes: cfg.Claude.WorkspaceMaxBytes,
		CABundle: cfg.Projects.CABundle, AllowLoopback: cfg.Projects.AllowLoopback, Log: a.Log,
	})
}

// Workspace is the S3 store of conversations' folders, git directories and
// project caches.
func Workspace(a *app.App) *workspace.Store {
	cfg := a.Config
	return workspace.New(a.AWS, workspace.Options{
		Bucket: cfg.SessionsBucket, Endpoint: cfg.S3Endpoint,
		// A git directory holds the project's pack, and the packs fetched
		// into a cache since: room for twice the fetch's cap.
		MaxBytes: cfg.Claude.WorkspaceMaxBytes, GitMaxBytes: 2 * cfg.Projects.MaxBytes,
	}, a.Log)
}
