package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/facecloud/facecloud/agents/keys"
)

// The stack's first admin API key. Every deployment gets one, so that
// enrolment, erasure and key management work from the first `pulumi up`:
//
//   - The key is the secret config value adminKey when set
//     (`pulumi config set --secret adminKey "$(...)"`), else one the program
//     makes at the first `pulumi up` and keeps from then on.
//   - It is kept in an SSM SecureString parameter (encrypted with the
//     account's aws/ssm key) that the stack creates: operators read it with
//     `aws ssm get-parameter --with-decryption` or
//     `pulumi stack output adminKey --show-secrets`. In Pulumi's state it is
//     a secret (encrypted by the stack's secrets provider); it is never in
//     user data, a log line or an output shown in plain text.
//   - The program writes the key's record — its hash, never the key — to
//     the output bucket under keys/, where the web hosts read their keys.
//     No host reads the parameter, so no role has a grant on it.
//
// A key the program made stays the same across runs: the parameter ignores
// changes to its value, so later runs' fresh keys are dropped and its
// value output is the first one. Its description keeps when the key was
// made, for the record's creation time.

// adminKeyName is the name the stack's first key is listed under.
const adminKeyName = "stack admin"

// adminKeyParameter names the SSM parameter of a stack's first admin key.
func adminKeyParameter(prefix string) string { return "/facecloud/" + prefix + "/admin-api-key" }

var createdRE = regexp.MustCompile(`created (\S+)`)

// adminKey is the key, secret, and its parameter.
type adminKey struct {
	param *ssm.Parameter
	key   pulumi.StringOutput
}

func newAdminKey(ctx *pulumi.Context, c Config, output *s3.BucketV2) (*adminKey, error) {
	value, err := config.TrySecret(ctx, c.Project+":adminKey")
	generated := err != nil
	if generated {
		value = pulumi.ToSecret(pulumi.String(keys.NewKey())).(pulumi.StringOutput)
	}
	ignore := []string{"description"}
	if generated {
		ignore = append(ignore, "value")
	}
	now := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	param, err := ssm.NewParameter(ctx, "admin-key", &ssm.ParameterArgs{
		Name:        pulumi.String(adminKeyParameter(c.NamePrefix)),
		Type:        pulumi.String("SecureString"),
		Value:       value,
		Description: pulumi.String(fmt.Sprintf("first admin API key of facecloud stack %s, created %s; its record is in the output bucket under keys/", c.Stack, now)),
		Tags:        c.tags(),
	}, pulumi.IgnoreChanges(ignore))
	if err != nil {
		return nil, fmt.Errorf("admin key parameter: %w", err)
	}
	record := pulumi.All(param.Value, param.Description).ApplyT(func(v []any) ([]string, error) {
		key := v[0].(string)
		desc := ""
		switch d := v[1].(type) {
		case *string:
			if d != nil {
				desc = *d
			}
		case string:
			desc = d
		}
		created := time.Time{}
		if m := createdRE.FindStringSubmatch(desc); m != nil {
			created, _ = time.Parse(time.RFC3339, strings.TrimSuffix(m[1], ";"))
		}
		id, body, err := keys.RecordFor(key, adminKeyName, []keys.Scope{keys.Admin}, created)
		if err != nil {
			return nil, fmt.Errorf("adminKey: %w", err)
		}
		return []string{keys.RecordKey(id), string(body)}, nil
	}).(pulumi.StringArrayOutput)
	if _, err := s3.NewBucketObjectv2(ctx, "admin-key-record", &s3.BucketObjectv2Args{
		Bucket: output.ID(),
		// The record's name holds the key's id, which is not secret
		// (`facecloud keys list` shows it).
		Key:                  pulumi.Unsecret(record.Index(pulumi.Int(0))).(pulumi.StringOutput),
		Content:              record.Index(pulumi.Int(1)),
		ContentType:          pulumi.String("application/json"),
		ServerSideEncryption: pulumi.String("AES256"),
		Tags:                 c.tags(),
	}); err != nil {
		return nil, fmt.Errorf("admin key record: %w", err)
	}
	return &adminKey{param: param, key: pulumi.ToSecret(param.Value).(pulumi.StringOutput)}, nil
}
