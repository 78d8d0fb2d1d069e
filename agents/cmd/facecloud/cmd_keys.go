package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/facecloud/facecloud/agents/keys"
)

func init() {
	register(command{
		name:    "keys",
		summary: "create, list and revoke API keys (create prints the new key, once)",
		run:     runKeys,
	})
}

func runKeys(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "keys")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: facecloud keys create (--data DIR | --store URL) --scopes SCOPE[,SCOPE...] [--collections C[,C...]] [--name NAME]
       facecloud keys list   (--data DIR | --store URL) [--json]
       facecloud keys revoke (--data DIR | --store URL) ID

Keys are kept, as hashes, in the gallery store: DIR/store locally, the web
agent's --gallery (or --output) URL on AWS, e.g. s3://BUCKET. Scopes:
recognize (the recognition routes), enroll (adding faces), admin
(everything: the gallery, erasure, keys, metrics). --collections limits a
key to those collections (named galleries): it can neither read nor change
any other, nor manage keys or read metrics. "create" prints the new
key alone on one line of stdout: it is shown this once. Web agents accept a
new key, and refuse a revoked one, within their --keys-refresh (5 s).

flags:`)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "local data directory: keys live in DIR/store")
	storeURL := fs.String("store", "", "store URL of the keys (the web agent's gallery store), e.g. s3://BUCKET or file:///DIR")
	scopes := fs.String("scopes", "", "create: comma-separated scopes: recognize, enroll, admin")
	name := fs.String("name", "", "create: a name for the key, to tell keys apart (up to 64 bytes)")
	collections := fs.String("collections", "", "create: comma-separated collections the key is limited to; empty: every collection")
	asJSON := fs.Bool("json", false, "list: print JSON")
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	switch sub {
	case "create", "list", "revoke":
	case "":
		return usageError(env, fs, "say create, list or revoke")
	default:
		return usageError(env, fs, fmt.Sprintf("unknown subcommand %q (create, list or revoke)", sub))
	}
	if (*data == "") == (*storeURL == "") {
		return usageError(env, fs, "give --data DIR or --store URL (one of them)")
	}
	want := 0
	if sub == "revoke" {
		want = 1
	}
	if fs.NArg() != want {
		return usageError(env, fs, fmt.Sprintf("keys %s takes %d argument(s), got %q", sub, want, fs.Args()))
	}
	u := *storeURL
	if u == "" {
		u = localStoreURL(*data)
	}
	st, err := openStore(ctx, env, u)
	if err != nil {
		return err
	}
	defer st.Close()
	ks := keys.NewStore(st)
	switch sub {
	case "create":
		return keysCreate(ctx, env, ks, *scopes, *collections, *name)
	case "list":
		return keysList(ctx, env, ks, *asJSON)
	default:
		return keysRevoke(ctx, env, ks, fs.Arg(0))
	}
}

func keysCreate(ctx context.Context, env *environment, ks *keys.Store, scopeList, collectionList, name string) error {
	scopes, err := keys.ParseScopes(scopeList)
	if err != nil {
		return err
	}
	collections, err := keys.ParseCollections(collectionList)
	if err != nil {
		return err
	}
	secret, k, err := ks.Create(ctx, name, scopes, collections...)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, secret)
	fmt.Fprintf(env.stderr, "created API key %s (scopes %s, collections %s); it is shown this once\n", k.ID, joinScopes(k.Scopes), collectionsText(k))
	return nil
}

// collectionsText is a key's collections for people.
func collectionsText(k keys.Key) string {
	if !k.Scoped() {
		return "all"
	}
	return strings.Join(k.Collections, ",")
}

func keysList(ctx context.Context, env *environment, ks *keys.Store, asJSON bool) error {
	list, err := ks.List(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if list == nil {
			list = []keys.Key{}
		}
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCOLLECTIONS\tCREATED\tLAST USED")
	for _, k := range list {
		used := "never"
		if !k.LastUsed.IsZero() {
			used = k.LastUsed.UTC().Format(time.RFC3339)
		}
		name := k.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, name, joinScopes(k.Scopes), collectionsText(k), k.Created.UTC().Format(time.RFC3339), used)
	}
	return tw.Flush()
}

func keysRevoke(ctx context.Context, env *environment, ks *keys.Store, id string) error {
	err := ks.Revoke(ctx, id)
	if errors.Is(err, keys.ErrNotFound) {
		return fmt.Errorf("no key %s in the store", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "revoked API key %s; web agents refuse it from their next key refresh\n", id)
	return nil
}

func joinScopes(s []keys.Scope) string {
	out := make([]string, len(s))
	for i, sc := range s {
		out[i] = string(sc)
	}
	return strings.Join(out, ",")
}
