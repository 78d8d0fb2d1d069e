package main

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/facecloud/facecloud/agents/awsres"
)

// Image sources for the worker AMI.
const (
	// ImageBuilder bakes the worker AMI with EC2 Image Builder from
	// images/worker (OS updates, service user, units, model files).
	ImageBuilder = "builder"
	// ImageStock boots the latest stock Amazon Linux 2023 image, which
	// fetches everything at first boot.
	ImageStock = "stock"
)

// Config is the stack's whole configuration, read once from the Pulumi
// config (namespace = project name, plus aws:region) and validated before a
// single resource is declared. Every key is explained in Pulumi.dev.yaml and
// docs/operations.md.
type Config struct {
	Project string
	Stack   string
	// Region is aws:region.
	Region string

	// NamingPreset is awsres.PresetDefault or awsres.PresetCourse.
	NamingPreset string
	// NamePrefix is "<project>-<stack>" by default; the course's ID for the
	// course preset.
	NamePrefix string

	VpcCidr string
	// PrivateWorkers puts workers in private subnets without internet
	// access; they reach S3 through a gateway endpoint and SQS, Auto
	// Scaling and Session Manager through interface endpoints.
	PrivateWorkers bool

	// Arch is the CPU architecture of every instance and of the agent
	// build: arm64 (Graviton) or amd64.
	Arch string
	// Image is ImageBuilder or ImageStock.
	Image              string
	WorkerInstanceType string
	WebInstanceType    string
	RootVolumeGiB      int

	MinWorkers   int
	MaxWorkers   int
	WarmPoolSize int
	// IdleExit is how long a worker waits without work before it retires.
	IdleExit time.Duration
	// GalleryRefresh is how often each worker lists the gallery for
	// enrolments and erasures made elsewhere: one S3 LIST a worker each
	// time, the largest per-worker API charge of an idle-to-busy fleet.
	GalleryRefresh time.Duration

	// WebHosts is how many web hosts the web tier's group keeps, spread
	// over two zones behind the load balancer.
	WebHosts int
	// WebPort is the port the web hosts listen on and, without a domain,
	// the load balancer's plain HTTP listener.
	WebPort int
	// AllowedCidrs may reach the load balancer's listeners; nothing else is
	// open inbound. Empty (the default) lets no one in.
	AllowedCidrs []string
	// Domain, with HostedZone (a public Route 53 zone it lies in), gives
	// the load balancer an ACM certificate for Domain and an HTTPS
	// listener; HTTP then only redirects to HTTPS.
	Domain     string
	HostedZone string
	// ReplyTouch and ReplyExpiry: how often a web host marks its reply
	// queue alive, and how long a queue may go untouched before the acting
	// scaler removes it as a dead host's.
	ReplyTouch  time.Duration
	ReplyExpiry time.Duration

	// LogRetentionDays is how long CloudWatch Logs keeps the agents' logs.
	LogRetentionDays int
	// AlarmEmail, when set, is subscribed to the alarms' SNS topic.
	AlarmEmail string
	// AlarmQueueAge is the age of the oldest queued request that raises
	// an alarm.
	AlarmQueueAge time.Duration
	// Alarm5xxPercent is the share of answers with a 5xx status, over 5
	// minutes, that raises an alarm.
	Alarm5xxPercent int

	ForceDestroy        bool
	InputRetentionDays  int
	OutputRetentionDays int
	// LogLevel is the agents' log level: info or debug.
	LogLevel string

	Queue awsres.QueueSettings
}

// defaultArch is the architecture with the lowest measured cost per request
// (docs/operations.md, "Cost per request"): on amd64 the engine runs its
// AVX2 kernels; on arm64 it runs the portable Go kernels, unmeasured on
// Graviton hardware. `facecloud:arch: arm64` alone switches, instance
// types following.
const defaultArch = "amd64"

// defaultInstanceTypes are the worker and web instance types a stack gets
// for its architecture when it names none: the cheapest per request in the
// cost table, and the smallest burstable type that holds the web host.
var defaultInstanceTypes = map[string]struct{ worker, web string }{
	"amd64": {worker: "c7a.large", web: "t3a.small"},
	"arm64": {worker: "c7g.large", web: "t4g.small"},
}

// defaults returns the configuration a stack gets for every key it leaves unset.
func defaults(project, stack string) Config {
	return Config{
		Project:             project,
		Stack:               stack,
		NamingPreset:        awsres.PresetDefault,
		NamePrefix:          awsres.SanitizePrefix(project + "-" + stack),
		VpcCidr:             "10.20.0.0/16",
		Arch:                defaultArch,
		Image:               ImageBuilder,
		WorkerInstanceType:  defaultInstanceTypes[defaultArch].worker,
		WebInstanceType:     defaultInstanceTypes[defaultArch].web,
		RootVolumeGiB:       8,
		MinWorkers:          0,
		MaxWorkers:          20,
		IdleExit:            5 * time.Minute,
		GalleryRefresh:      awsres.DefaultGalleryRefresh,
		WebHosts:            2,
		WebPort:             80,
		AllowedCidrs:        []string{},
		ReplyTouch:          time.Minute,
		ReplyExpiry:         10 * time.Minute,
		LogRetentionDays:    30,
		AlarmQueueAge:       5 * time.Minute,
		Alarm5xxPercent:     5,
		InputRetentionDays:  7,
		OutputRetentionDays: 30,
		LogLevel:            "info",
		Queue:               awsres.DefaultQueueSettings,
	}
}

// configSource is where configuration values come from: the Pulumi
// config of the stack (*config.Config), or a map in tests.
type configSource interface {
	Try(key string) (string, error)
	TryObject(key string, output any) error
}

// loadConfig reads the stack's configuration and validates it.
func loadConfig(ctx *pulumi.Context) (Config, error) {
	region := config.New(ctx, "aws").Get("region")
	return readConfig(ctx.Project(), ctx.Stack(), region, config.New(ctx, ""))
}

// readConfig reads every key from src over the defaults and validates the
// result. Every bad key is reported, each on its own line, so one
// `pulumi preview` shows them all.
func readConfig(project, stack, region string, src configSource) (Config, error) {
	c := defaults(project, stack)
	c.Region = region
	r := reader{src: src}
	r.str("namingPreset", &c.NamingPreset)
	r.str("namePrefix", &c.NamePrefix)
	r.str("vpcCidr", &c.VpcCidr)
	r.boolean("privateWorkers", &c.PrivateWorkers)
	r.str("arch", &c.Arch)
	if t, ok := defaultInstanceTypes[c.Arch]; ok {
		c.WorkerInstanceType, c.WebInstanceType = t.worker, t.web
	}
	r.str("image", &c.Image)
	r.str("workerInstanceType", &c.WorkerInstanceType)
	r.str("webInstanceType", &c.WebInstanceType)
	r.integer("rootVolumeGiB", &c.RootVolumeGiB)
	r.integer("minWorkers", &c.MinWorkers)
	r.integer("maxWorkers", &c.MaxWorkers)
	r.integer("warmPoolSize", &c.WarmPoolSize)
	r.duration("idleExit", &c.IdleExit)
	r.duration("galleryRefresh", &c.GalleryRefresh)
	r.integer("webHosts", &c.WebHosts)
	r.integer("webPort", &c.WebPort)
	r.strings("allowedCidrs", &c.AllowedCidrs)
	r.str("domain", &c.Domain)
	r.str("hostedZone", &c.HostedZone)
	r.duration("replyTouch", &c.ReplyTouch)
	r.duration("replyExpiry", &c.ReplyExpiry)
	r.integer("logRetentionDays", &c.LogRetentionDays)
	r.str("alarmEmail", &c.AlarmEmail)
	r.duration("alarmQueueAge", &c.AlarmQueueAge)
	r.integer("alarm5xxPercent", &c.Alarm5xxPercent)
	r.boolean("forceDestroy", &c.ForceDestroy)
	r.integer("inputRetentionDays", &c.InputRetentionDays)
	r.integer("outputRetentionDays", &c.OutputRetentionDays)
	r.str("logLevel", &c.LogLevel)
	r.duration("queueVisibilityTimeout", &c.Queue.VisibilityTimeout)
	r.duration("workerHeartbeat", &c.Queue.Heartbeat)
	r.integer("queueMaxReceives", &c.Queue.MaxReceives)
	if err := errors.Join(r.errs...); err != nil {
		return Config{}, fmt.Errorf("stack config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("stack config: %w", err)
	}
	return c, nil
}

// reader collects type errors while reading optional keys.
type reader struct {
	src  configSource
	errs []error
}

func (r *reader) str(key string, dst *string) {
	if v, err := r.src.Try(key); err == nil {
		*dst = strings.TrimSpace(v)
	}
}

func (r *reader) boolean(key string, dst *bool) {
	v, err := r.src.Try(key)
	if err != nil {
		return
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not true or false", key, v))
	}
}

func (r *reader) integer(key string, dst *int) {
	v, err := r.src.Try(key)
	if err != nil {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a whole number", key, v))
		return
	}
	*dst = n
}

func (r *reader) duration(key string, dst *time.Duration) {
	v, err := r.src.Try(key)
	if err != nil {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a duration such as 90s or 5m", key, v))
		return
	}
	*dst = d
}

func (r *reader) strings(key string, dst *[]string) {
	if _, err := r.src.Try(key); err != nil {
		return
	}
	var list []string
	if err := r.src.TryObject(key, &list); err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: not a list of strings such as [\"203.0.113.0/24\"]", key))
		return
	}
	*dst = list
}

// logRetentions are the retention periods CloudWatch Logs accepts, in days.
var logRetentions = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

var (
	dnsName      = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	emailAddress = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// minIdleExit is the shortest idle time before a worker retires: the
// course asks for no instance running about 10 s after the last answer.
const minIdleExit = 5 * time.Second

// instanceType splits an EC2 instance type such as "c7g.large" into family
// letters, generation, attribute letters ("g" = Graviton) and size.
var instanceType = regexp.MustCompile(`^([a-z]+)([0-9]+)([a-z-]*)\.([0-9a-z]+)$`)

// archOf reports the CPU architecture of an EC2 instance type: Graviton
// families carry a "g" after the generation digit (t4g, c7g, c6gn, m8g).
func archOf(t string) (string, bool) {
	m := instanceType.FindStringSubmatch(t)
	if m == nil {
		return "", false
	}
	if strings.Contains(m[3], "g") {
		return "arm64", true
	}
	return "amd64", true
}

// Validate checks every key against its allowed range and reports all
// violations at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.Region == "" {
		bad("aws:region is not set: run `pulumi config set aws:region us-east-1` (or your region)")
	}
	if _, err := awsres.NewNames(c.NamingPreset, c.NamePrefix); err != nil {
		bad("namingPreset/namePrefix: %v", err)
	}
	if p, err := netip.ParsePrefix(c.VpcCidr); err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 22 || p.Masked() != p {
		bad("vpcCidr %q must be an IPv4 network from /16 to /22 (e.g. 10.20.0.0/16)", c.VpcCidr)
	}
	if c.Arch != "arm64" && c.Arch != "amd64" {
		bad("arch %q must be arm64 or amd64", c.Arch)
	}
	if c.Image != ImageBuilder && c.Image != ImageStock {
		bad("image %q must be %q or %q", c.Image, ImageBuilder, ImageStock)
	}
	for key, t := range map[string]string{"workerInstanceType": c.WorkerInstanceType, "webInstanceType": c.WebInstanceType} {
		a, ok := archOf(t)
		switch {
		case !ok:
			bad("%s %q is not an EC2 instance type such as c7g.large", key, t)
		case (c.Arch == "arm64" || c.Arch == "amd64") && a != c.Arch:
			bad("%s %q is %s but arch is %s (Graviton types such as c7g/t4g are arm64)", key, t, a, c.Arch)
		}
	}
	if c.RootVolumeGiB < 8 || c.RootVolumeGiB > 100 {
		bad("rootVolumeGiB %d out of range 8..100", c.RootVolumeGiB)
	}
	if c.MaxWorkers < 1 || c.MaxWorkers > 100 {
		bad("maxWorkers %d out of range 1..100", c.MaxWorkers)
	}
	if c.MinWorkers < 0 || c.MinWorkers > c.MaxWorkers {
		bad("minWorkers %d out of range 0..maxWorkers (%d)", c.MinWorkers, c.MaxWorkers)
	}
	if c.WarmPoolSize < 0 || c.WarmPoolSize > c.MaxWorkers {
		bad("warmPoolSize %d out of range 0..maxWorkers (%d); 0 turns the warm pool off", c.WarmPoolSize, c.MaxWorkers)
	}
	if c.IdleExit < minIdleExit || c.IdleExit > time.Hour {
		bad("idleExit %s out of range %s..1h", c.IdleExit, minIdleExit)
	}
	if err := awsres.ValidGalleryRefresh(c.GalleryRefresh); err != nil {
		bad("galleryRefresh: %v", err)
	}
	if c.WebPort < 1 || c.WebPort > 65535 || c.WebPort == 22 {
		bad("webPort %d out of range 1..65535 (22 is refused: there is no SSH)", c.WebPort)
	}
	if c.WebHosts < 1 || c.WebHosts > 10 {
		bad("webHosts %d out of range 1..10", c.WebHosts)
	}
	if len(c.AllowedCidrs) > 20 {
		bad("allowedCidrs has %d entries; allowed 0..20 (none: no one may reach the service)", len(c.AllowedCidrs))
	}
	for _, s := range c.AllowedCidrs {
		if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() || p.Masked() != p {
			bad("allowedCidrs entry %q is not an IPv4 network such as 203.0.113.0/24", s)
		}
	}
	switch {
	case (c.Domain == "") != (c.HostedZone == ""):
		bad("domain %q and hostedZone %q: set both (HTTPS) or neither (plain HTTP)", c.Domain, c.HostedZone)
	case c.Domain != "" && !dnsName.MatchString(c.Domain):
		bad("domain %q is not a DNS name such as api.example.com", c.Domain)
	case c.HostedZone != "" && !dnsName.MatchString(strings.TrimSuffix(c.HostedZone, ".")):
		bad("hostedZone %q is not a DNS zone name such as example.com", c.HostedZone)
	case c.Domain != "" && c.Domain != strings.TrimSuffix(c.HostedZone, ".") && !strings.HasSuffix(c.Domain, "."+strings.TrimSuffix(c.HostedZone, ".")):
		bad("domain %q is not in hostedZone %q", c.Domain, c.HostedZone)
	}
	if c.Domain != "" && c.WebPort == 443 {
		bad("webPort 443 with a domain: the load balancer listens on 443 and 80 itself; the hosts' port is inside the VPC (keep 80)")
	}
	if c.ReplyTouch < time.Second || c.ReplyTouch > time.Hour {
		bad("replyTouch %s out of range 1s..1h", c.ReplyTouch)
	}
	if c.ReplyExpiry < 5*time.Second || c.ReplyExpiry > 24*time.Hour || c.ReplyExpiry < 3*c.ReplyTouch {
		bad("replyExpiry %s out of range 5s..24h and at least 3 × replyTouch (%s)", c.ReplyExpiry, 3*c.ReplyTouch)
	}
	if !slices.Contains(logRetentions, c.LogRetentionDays) {
		bad("logRetentionDays %d is not one CloudWatch Logs offers: %v", c.LogRetentionDays, logRetentions)
	}
	if c.AlarmEmail != "" && !emailAddress.MatchString(c.AlarmEmail) {
		bad("alarmEmail %q is not an e-mail address", c.AlarmEmail)
	}
	if c.AlarmQueueAge < time.Minute || c.AlarmQueueAge > 24*time.Hour {
		bad("alarmQueueAge %s out of range 1m..24h", c.AlarmQueueAge)
	}
	if c.Alarm5xxPercent < 1 || c.Alarm5xxPercent > 100 {
		bad("alarm5xxPercent %d out of range 1..100", c.Alarm5xxPercent)
	}
	if c.InputRetentionDays < 1 || c.InputRetentionDays > 3650 {
		bad("inputRetentionDays %d out of range 1..3650", c.InputRetentionDays)
	}
	if c.OutputRetentionDays < 1 || c.OutputRetentionDays > 3650 {
		bad("outputRetentionDays %d out of range 1..3650", c.OutputRetentionDays)
	}
	if c.LogLevel != "info" && c.LogLevel != "debug" {
		bad("logLevel %q must be info or debug", c.LogLevel)
	}
	if err := c.Queue.Validate(); err != nil {
		bad("queueVisibilityTimeout/workerHeartbeat/queueMaxReceives: %v", err)
	}
	return errors.Join(errs...)
}

// tags returns the tags every taggable resource carries, plus the given extras.
func (c Config) tags(extra ...string) pulumi.StringMap {
	m := pulumi.StringMap{}
	for k, v := range awsres.Tags(c.Project, c.Stack) {
		m[k] = pulumi.String(v)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = pulumi.String(extra[i+1])
	}
	return m
}
