package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ovrlrd/cloud/internal/config"
	"github.com/ovrlrd/cloud/internal/devkit/dynamolocal"
	"github.com/ovrlrd/cloud/internal/store"
	"github.com/ovrlrd/cloud/internal/workspace"
)

// port reads a port setting: def when unset, 0 for any free port.
func port(getenv func(string) string, name string, def int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a port (0 to 65535; 0 picks a free one)", name, v)
	}
	return int(n), nil
}

// dialURL is how this process reaches a server listening at addr: a
// stand-in listening on every interface is reached on loopback.
func dialURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// s3Access opens the S3 stand-in as the functions' roles open their
// bucket: to make dev's generated key (secret, so whatever signs with it is
// this server), everywhere; to sam local's key (public, committed in
// events/env.json), in sam local's bucket only, so a tool on this machine
// that knows it reaches what sam local invocations wrote and nothing of
// make dev's. SigV4 names the key in the Authorization header.
func s3Access(own string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := accessKey(r.Header.Get("Authorization"))
		// gofakes3 takes the bucket from the path's first segment.
		bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch {
		case own != "" && key == own:
		case key == config.SAMLocalKey && bucket == config.SAMLocalBucket:
		default:
			http.Error(w, "AccessDenied", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// accessKey is the key a SigV4 Authorization header names, or "".
func accessKey(auth string) string {
	_, cred, _ := strings.Cut(auth, "Credential=")
	key, _, _ := strings.Cut(cred, "/")
	return key
}

// ensureTimeout bounds making sam local's table and bucket.
const ensureTimeout = 30 * time.Second

// ensureSAMLocal makes what events/env.json points sam local at: the table
// in DynamoDB Local's database for sam local's key (and region), and, when
// the S3 stand-in is this process's (s3Endpoint set), sam local's bucket.
func ensureSAMLocal(ctx context.Context, dynamoEndpoint, s3Endpoint string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, ensureTimeout)
	defer cancel()
	cfg := aws.Config{
		Region:      config.SAMLocalRegion,
		Credentials: credentials.NewStaticCredentialsProvider(config.SAMLocalKey, config.SAMLocalKey, ""),
	}
	if err := dynamolocal.EnsureTable(ctx, store.NewDB(cfg, dynamoEndpoint), config.DevTable); err != nil {
		return fmt.Errorf("sam local's table: %w", err)
	}
	if s3Endpoint == "" {
		return nil
	}
	ws := workspace.New(cfg, workspace.Options{Bucket: config.SAMLocalBucket, Endpoint: s3Endpoint}, log)
	if err := ws.EnsureBucket(ctx); err != nil {
		return fmt.Errorf("sam local's bucket: %w", err)
	}
	return nil
}
