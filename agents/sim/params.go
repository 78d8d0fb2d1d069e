package sim

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// Params are the timings and sizes of a deployment, read from a YAML file
// whose every figure names its source (data/params.yaml is the default).
type Params struct {
	Instance struct {
		Type          Figure[string] `yaml:"type"`
		VCPUs         Figure[int]    `yaml:"vcpus"`
		RootVolumeGiB Figure[int]    `yaml:"root_volume_gib"`
		PublicIPv4    Figure[bool]   `yaml:"public_ipv4"`
	} `yaml:"instance"`
	Boot struct {
		ASGReaction   Dist `yaml:"asg_reaction"`
		ColdToRunning Dist `yaml:"cold_to_running"`
		WarmToRunning Dist `yaml:"warm_to_running"`
		OSBoot        Dist `yaml:"os_boot"`
		AgentFetch    Dist `yaml:"agent_fetch"`
		AgentStart    Dist `yaml:"agent_start"`
	} `yaml:"boot"`
	Engine Dist `yaml:"engine"`
	IO     struct {
		S3Get    Dist `yaml:"s3_get"`
		S3Put    Dist `yaml:"s3_put"`
		SQS      Dist `yaml:"sqs"`
		WebCheck Dist `yaml:"web_check"`
	} `yaml:"io"`
	Request struct {
		ImageBytes    Figure[int] `yaml:"image_bytes"`
		ResponseBytes Figure[int] `yaml:"response_bytes"`
	} `yaml:"request"`
	Gallery struct {
		Entries Figure[int]           `yaml:"entries"`
		Refresh Figure[time.Duration] `yaml:"refresh"`
	} `yaml:"gallery"`
	Deployment struct {
		MinWorkers          Figure[int]           `yaml:"min_workers"`
		MaxWorkers          Figure[int]           `yaml:"max_workers"`
		WarmPool            Figure[int]           `yaml:"warm_pool"`
		WarmPoolMaxPrepared Figure[int]           `yaml:"warm_pool_max_prepared"`
		IdleExit            Figure[time.Duration] `yaml:"idle_exit"`
		Concurrency         Figure[int]           `yaml:"concurrency"`
		InputRetentionDays  Figure[int]           `yaml:"input_retention_days"`
		OutputRetentionDays Figure[int]           `yaml:"output_retention_days"`
	} `yaml:"deployment"`
	Legacy struct {
		Interval     Figure[time.Duration] `yaml:"interval"`
		MaxInstances Figure[int]           `yaml:"max_instances"`
		Phase        Figure[time.Duration] `yaml:"phase"`
		Service      Dist                  `yaml:"service"`
	} `yaml:"legacy"`
}

// Prices are list prices with their region, date and sources
// (data/prices.yaml is the default).
type Prices struct {
	Region                   string                     `yaml:"region"`
	AsOf                     string                     `yaml:"as_of"`
	InstanceHour             map[string]Figure[float64] `yaml:"instance_hour"`
	EBSGp3GBMonth            Figure[float64]            `yaml:"ebs_gp3_gb_month"`
	PublicIPv4Hour           Figure[float64]            `yaml:"public_ipv4_hour"`
	S3PutPer1000             Figure[float64]            `yaml:"s3_put_per_1000"`
	S3GetPer1000             Figure[float64]            `yaml:"s3_get_per_1000"`
	S3GBMonth                Figure[float64]            `yaml:"s3_gb_month"`
	SQSPerMillion            Figure[float64]            `yaml:"sqs_per_million"`
	SQSChunkBytes            Figure[int]                `yaml:"sqs_chunk_bytes"`
	TransferOutGB            Figure[float64]            `yaml:"transfer_out_gb"`
	RekognitionSearchPer1000 Figure[float64]            `yaml:"rekognition_search_per_1000"`
	WebInstanceType          Figure[string]             `yaml:"web_instance_type"`
}

//go:embed data/params.yaml
var defaultParams []byte

//go:embed data/prices.yaml
var defaultPrices []byte

// DefaultParams returns the built-in parameters (data/params.yaml).
func DefaultParams() Params {
	p, err := ParseParams(defaultParams)
	if err != nil {
		panic("sim: built-in params.yaml: " + err.Error())
	}
	return p
}

// DefaultPrices returns the built-in prices (data/prices.yaml).
func DefaultPrices() Prices {
	p, err := ParsePrices(defaultPrices)
	if err != nil {
		panic("sim: built-in prices.yaml: " + err.Error())
	}
	return p
}

// ParseParams reads and validates a params file; unknown keys are errors.
func ParseParams(b []byte) (Params, error) {
	var p Params
	if err := decodeStrict(b, &p); err != nil {
		return Params{}, fmt.Errorf("params: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Params{}, fmt.Errorf("params: %w", err)
	}
	return p, nil
}

// ParsePrices reads and validates a price file; unknown keys are errors.
func ParsePrices(b []byte) (Prices, error) {
	var p Prices
	if err := decodeStrict(b, &p); err != nil {
		return Prices{}, fmt.Errorf("prices: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Prices{}, fmt.Errorf("prices: %w", err)
	}
	return p, nil
}

// LoadParams reads a params file, or the built-in one when path is empty.
func LoadParams(path string) (Params, error) {
	if path == "" {
		return DefaultParams(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Params{}, fmt.Errorf("read params: %w", err)
	}
	return ParseParams(b)
}

// LoadPrices reads a price file, or the built-in one when path is empty.
func LoadPrices(path string) (Prices, error) {
	if path == "" {
		return DefaultPrices(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Prices{}, fmt.Errorf("read prices: %w", err)
	}
	return ParsePrices(b)
}

func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// Validate states the allowed ranges and asks every figure for its source.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for name, d := range map[string]Dist{
		"boot.asg_reaction": p.Boot.ASGReaction, "boot.cold_to_running": p.Boot.ColdToRunning,
		"boot.warm_to_running": p.Boot.WarmToRunning, "boot.os_boot": p.Boot.OSBoot,
		"boot.agent_fetch": p.Boot.AgentFetch, "boot.agent_start": p.Boot.AgentStart,
		"engine": p.Engine, "io.s3_get": p.IO.S3Get, "io.s3_put": p.IO.S3Put, "io.sqs": p.IO.SQS,
		"io.web_check": p.IO.WebCheck, "legacy.service": p.Legacy.Service,
	} {
		if err := d.Validate(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkAll(map[string]interface{ check(string) error }{
		"instance.type": p.Instance.Type, "instance.vcpus": p.Instance.VCPUs,
		"instance.root_volume_gib": p.Instance.RootVolumeGiB, "instance.public_ipv4": p.Instance.PublicIPv4,
		"request.image_bytes": p.Request.ImageBytes, "request.response_bytes": p.Request.ResponseBytes,
		"gallery.entries": p.Gallery.Entries, "gallery.refresh": p.Gallery.Refresh,
		"deployment.min_workers": p.Deployment.MinWorkers, "deployment.max_workers": p.Deployment.MaxWorkers,
		"deployment.warm_pool": p.Deployment.WarmPool, "deployment.warm_pool_max_prepared": p.Deployment.WarmPoolMaxPrepared,
		"deployment.idle_exit": p.Deployment.IdleExit, "deployment.concurrency": p.Deployment.Concurrency,
		"deployment.input_retention_days": p.Deployment.InputRetentionDays, "deployment.output_retention_days": p.Deployment.OutputRetentionDays,
		"legacy.interval": p.Legacy.Interval, "legacy.max_instances": p.Legacy.MaxInstances, "legacy.phase": p.Legacy.Phase,
	}); err != nil {
		errs = append(errs, err)
	}
	if v := p.Instance.VCPUs.Value; v < 1 || v > 192 {
		bad("instance.vcpus %d out of range 1..192", v)
	}
	if v := p.Instance.RootVolumeGiB.Value; v < 1 || v > 16384 {
		bad("instance.root_volume_gib %d out of range 1..16384", v)
	}
	if v := p.Request.ImageBytes.Value; v < 1 || v > 50<<20 {
		bad("request.image_bytes %d out of range 1..52428800", v)
	}
	if v := p.Request.ResponseBytes.Value; v < 0 || v > 1<<20 {
		bad("request.response_bytes %d out of range 0..1048576", v)
	}
	if v := p.Gallery.Entries.Value; v < 0 || v > 10_000_000 {
		bad("gallery.entries %d out of range 0..10000000", v)
	}
	if v := p.Gallery.Refresh.Value; v < 100*time.Millisecond || v > 10*time.Minute {
		bad("gallery.refresh %s out of range 100ms..10m", v)
	}
	d := p.Deployment
	if d.MaxWorkers.Value < 1 || d.MaxWorkers.Value > 100 {
		bad("deployment.max_workers %d out of range 1..100", d.MaxWorkers.Value)
	}
	if d.MinWorkers.Value < 0 || d.MinWorkers.Value > d.MaxWorkers.Value {
		bad("deployment.min_workers %d out of range 0..%d (max_workers)", d.MinWorkers.Value, d.MaxWorkers.Value)
	}
	if d.WarmPool.Value < 0 || d.WarmPool.Value > d.MaxWorkers.Value {
		bad("deployment.warm_pool %d out of range 0..%d (max_workers)", d.WarmPool.Value, d.MaxWorkers.Value)
	}
	if d.WarmPoolMaxPrepared.Value < 0 || d.WarmPoolMaxPrepared.Value > 1000 {
		bad("deployment.warm_pool_max_prepared %d out of range 0..1000 (0: the group's max size)", d.WarmPoolMaxPrepared.Value)
	}
	if d.IdleExit.Value < 0 || d.IdleExit.Value > 24*time.Hour {
		bad("deployment.idle_exit %s out of range 0..24h (0: never)", d.IdleExit.Value)
	}
	if d.Concurrency.Value < 0 || d.Concurrency.Value > 256 {
		bad("deployment.concurrency %d out of range 0..256 (0: the vCPU count)", d.Concurrency.Value)
	}
	if d.InputRetentionDays.Value < 1 || d.InputRetentionDays.Value > 3650 {
		bad("deployment.input_retention_days %d out of range 1..3650", d.InputRetentionDays.Value)
	}
	if d.OutputRetentionDays.Value < 1 || d.OutputRetentionDays.Value > 3650 {
		bad("deployment.output_retention_days %d out of range 1..3650", d.OutputRetentionDays.Value)
	}
	if v := p.Legacy.Interval.Value; v < time.Second || v > time.Hour {
		bad("legacy.interval %s out of range 1s..1h", v)
	}
	if v := p.Legacy.Phase.Value; v < 0 || v > p.Legacy.Interval.Value {
		bad("legacy.phase %s out of range 0..%s (the interval)", v, p.Legacy.Interval.Value)
	}
	if v := p.Legacy.MaxInstances.Value; v < 1 || v > 1000 {
		bad("legacy.max_instances %d out of range 1..1000", v)
	}
	return errors.Join(errs...)
}

// Validate checks every price is there, non-negative and sourced.
func (p Prices) Validate() error {
	var errs []error
	if p.Region == "" || p.AsOf == "" {
		errs = append(errs, errors.New("region and as_of must be set: prices hold in one region on one date"))
	}
	if _, err := time.Parse(time.DateOnly, p.AsOf); p.AsOf != "" && err != nil {
		errs = append(errs, fmt.Errorf("as_of %q is not a date such as 2025-06-01", p.AsOf))
	}
	figs := map[string]Figure[float64]{
		"ebs_gp3_gb_month": p.EBSGp3GBMonth, "public_ipv4_hour": p.PublicIPv4Hour,
		"s3_put_per_1000": p.S3PutPer1000, "s3_get_per_1000": p.S3GetPer1000, "s3_gb_month": p.S3GBMonth,
		"sqs_per_million": p.SQSPerMillion, "transfer_out_gb": p.TransferOutGB,
		"rekognition_search_per_1000": p.RekognitionSearchPer1000,
	}
	for t, f := range p.InstanceHour {
		figs["instance_hour."+t] = f
	}
	for _, name := range sortedKeys(figs) {
		f := figs[name]
		if err := f.check(name); err != nil {
			errs = append(errs, err)
		}
		if f.Value < 0 {
			errs = append(errs, fmt.Errorf("%s %v must not be negative", name, f.Value))
		}
	}
	if err := p.SQSChunkBytes.check("sqs_chunk_bytes"); err != nil {
		errs = append(errs, err)
	}
	if p.SQSChunkBytes.Value < 1024 {
		errs = append(errs, fmt.Errorf("sqs_chunk_bytes %d must be at least 1024", p.SQSChunkBytes.Value))
	}
	if err := p.WebInstanceType.check("web_instance_type"); err != nil {
		errs = append(errs, err)
	}
	if _, ok := p.InstanceHour[p.WebInstanceType.Value]; !ok {
		errs = append(errs, fmt.Errorf("web_instance_type %q has no instance_hour price", p.WebInstanceType.Value))
	}
	return errors.Join(errs...)
}

// InstancePrice is the hourly price of instance type t.
func (p Prices) InstancePrice(t string) (float64, error) {
	f, ok := p.InstanceHour[t]
	if !ok {
		return 0, fmt.Errorf("no instance_hour price for %q in the price file (have %v)", t, sortedKeys(p.InstanceHour))
	}
	return f.Value, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// DefaultParamsFile is the built-in params file as written.
func DefaultParamsFile() []byte { return defaultParams }

// DefaultPricesFile is the built-in price file as written.
func DefaultPricesFile() []byte { return defaultPrices }
