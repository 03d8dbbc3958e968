package streamfn

import (
	"cmp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/ovrlrd/cloud/internal/app"
	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/envelope"
	"github.com/ovrlrd/cloud/internal/project"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// newProjects returns the project service, or nil when the configuration
// names no KMS key (a local server without one: it serves no project
// routes). A nil kmsClient is AWS KMS's, the deployed one; make dev gives
// its own.
func newProjects(a *app.App, files *workspace.Store, kmsClient envelope.KMS) *project.Service {
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

// newWorkspace is the S3 store of conversations' folders, git directories,
// project caches and imports' uploads.
func newWorkspace(a *app.App) *workspace.Store {
	cfg := a.Config
	o := workspace.Options{
		Bucket: cfg.SessionsBucket, Endpoint: cfg.S3Endpoint,
		// A git directory holds the project's pack, and the packs fetched
		// into a cache since: room for twice the fetch's cap.
		MaxBytes: cfg.Claude.WorkspaceMaxBytes, GitMaxBytes: 2 * cfg.Projects.MaxBytes,
	}
	if cfg.Stage == config.Local {
		o.UploadCredentials = credentials.NewStaticCredentialsProvider(config.LocalUploadKeyID, cmp.Or(cfg.LocalAWSKey.Reveal(), "local"), "")
	}
	return workspace.New(a.AWS, o, a.Log)
}
