// Package awsconf turns the agents' few AWS settings (region, one endpoint
// override, profile, instance id) into an aws.Config on the SDK's standard
// credential chain, and logs what it resolved without secrets. Everything
// else (credentials, retries, IMDS) is left to the SDK's own environment
// variables and shared config files, so an agent on EC2 needs no settings at
// all and a test against a local emulator needs one endpoint.
package awsconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
)

// Environment variables read by FromEnv; flags of the same meaning default to them.
const (
	// EnvRegion names the region; AWS_REGION and AWS_DEFAULT_REGION are also
	// honoured (by the SDK) when it is unset, then the instance's region from IMDS.
	EnvRegion = "FACECLOUD_AWS_REGION"
	// EnvEndpoint sends every AWS call to one endpoint (a local emulator such
	// as moto). AWS_ENDPOINT_URL does the same through the SDK.
	EnvEndpoint = "FACECLOUD_AWS_ENDPOINT"
	// EnvProfile names a shared-config profile; AWS_PROFILE also works.
	EnvProfile = "FACECLOUD_AWS_PROFILE"
	// EnvInstanceID gives a worker its EC2 instance id without asking IMDS.
	EnvInstanceID = "FACECLOUD_INSTANCE_ID"
	// EnvIMDSEndpoint points the instance metadata client elsewhere (tests);
	// AWS_EC2_METADATA_SERVICE_ENDPOINT also works.
	EnvIMDSEndpoint = "FACECLOUD_IMDS_ENDPOINT"
)

// Config is what an agent is told about AWS. The zero value is valid: the
// SDK then finds region and credentials the standard way.
type Config struct {
	// Region such as "us-east-1"; empty lets the SDK decide.
	Region string
	// Endpoint, when set, is the base URL of every AWS service called
	// (http or https, host and optional port), e.g. a moto server. S3 is then
	// addressed path-style, as emulators need.
	Endpoint string
	// Profile is a shared-config profile name; empty uses the default chain.
	Profile string
	// InstanceID is this machine's EC2 instance id; empty asks IMDSv2.
	InstanceID string
	// IMDSEndpoint overrides the instance metadata service's address.
	IMDSEndpoint string
	// Logger receives the SDK's own messages (a response without a
	// checksum to validate, a deprecated setting), as records of the
	// agent's log; nil drops them. Without it the SDK writes plain text to
	// stderr, which breaks a log of JSON lines.
	Logger *slog.Logger
}

// sdkLogger passes the SDK's messages to a slog.Logger.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "aws sdk", "detail", fmt.Sprintf(format, v...))
}

var (
	regionRE   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	instanceRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
)

// FromEnv reads the configuration from the environment variables above.
func FromEnv(getenv func(string) string) Config {
	return Config{
		Region:       getenv(EnvRegion),
		Endpoint:     getenv(EnvEndpoint),
		Profile:      getenv(EnvProfile),
		InstanceID:   getenv(EnvInstanceID),
		IMDSEndpoint: getenv(EnvIMDSEndpoint),
	}
}

// Validate reports the first setting that cannot work, saying what is allowed.
func (c Config) Validate() error {
	if c.Region != "" && !regionRE.MatchString(c.Region) {
		return fmt.Errorf("AWS region %q is not a region name like us-east-1", c.Region)
	}
	if err := validURL("AWS endpoint", c.Endpoint); err != nil {
		return err
	}
	if err := validURL("IMDS endpoint", c.IMDSEndpoint); err != nil {
		return err
	}
	if c.InstanceID != "" && !instanceRE.MatchString(c.InstanceID) {
		return fmt.Errorf("instance id %q is not an EC2 instance id like i-0123456789abcdef0", c.InstanceID)
	}
	return nil
}

func validURL(what, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q must be an http:// or https:// URL with a host", what, raw)
	}
	return nil
}

// Load resolves an aws.Config: the region and endpoint given, else the SDK's
// defaults; credentials from the standard chain (environment, shared files,
// SSO, web identity, the instance role through IMDSv2).
func (c Config) Load(ctx context.Context) (aws.Config, error) {
	if err := c.Validate(); err != nil {
		return aws.Config{}, err
	}
	var sdkLog logging.Logger = logging.Nop{}
	if c.Logger != nil {
		sdkLog = sdkLogger{c.Logger}
	}
	opts := []func(*config.LoadOptions) error{config.WithLogger(sdkLog)}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	} else {
		// On EC2 with no region configured, ask the instance; elsewhere the
		// SDK's own variables and files decide.
		opts = append(opts, config.WithEC2IMDSRegion())
	}
	if c.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(c.Endpoint))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.IMDSEndpoint != "" {
		opts = append(opts, config.WithEC2IMDSEndpoint(c.IMDSEndpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set " + EnvRegion + ", AWS_REGION or --aws-region")
	}
	return cfg, nil
}

// Emulated reports whether calls go to an endpoint other than AWS's own,
// which then wants S3 path-style addressing.
func Emulated(cfg aws.Config) bool {
	return cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != ""
}

// Log writes the effective configuration at info level: region, endpoint,
// profile and where credentials come from, never a key or token.
func Log(ctx context.Context, log *slog.Logger, c Config, cfg aws.Config) {
	endpoint := "AWS"
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		endpoint = *cfg.BaseEndpoint
	}
	source := "none"
	if cfg.Credentials != nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		creds, err := cfg.Credentials.Retrieve(rctx)
		cancel()
		if err != nil {
			source = "unavailable: " + firstLine(err.Error())
		} else {
			source = creds.Source
		}
	}
	attrs := []any{"region", cfg.Region, "endpoint", endpoint, "credentials", source}
	if c.Profile != "" {
		attrs = append(attrs, "profile", c.Profile)
	}
	if c.InstanceID != "" {
		attrs = append(attrs, "instance_id", c.InstanceID)
	}
	log.InfoContext(ctx, "aws config", attrs...)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
