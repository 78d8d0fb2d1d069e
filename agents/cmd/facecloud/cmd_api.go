package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/facecloud/facecloud/agents/client"
	"github.com/facecloud/facecloud/agents/imagefiles"
)

func init() {
	register(command{
		name:    "api",
		summary: "call a running service's face API: collections, enrolment, search, detection, verification, erasure",
		run:     runAPI,
	})
}

const apiUsage = `usage: facecloud api --url URL [--api-key KEY] COMMAND ARGS...

Calls the service's HTTP API (through the typed client, agents/client) and
prints each answer as JSON. Commands:

  collections                             the collections the key may use
  persons COLLECTION                      a collection's persons (every page)
  faces COLLECTION PERSON                 a person's faces (every page)
  enroll COLLECTION PERSON IMG|DIR|ZIP... enrol images as PERSON (--external-id with one image)
  search COLLECTION IMG                   each face's nearest faces (--limit, --threshold, --quality)
  detect IMG                              faces, scores and 68 landmarks
  verify IMG IMG                          are the two largest faces one person (--threshold, --quality)
  verify IMG --person P [--collection C]  is the largest face P
  delete COLLECTION PERSON [FACE]         erase a person or a face (--purge)

flags:`

func runAPI(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "api")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), apiUsage)
		fs.PrintDefaults()
	}
	url := fs.String("url", "", "the service's base URL, e.g. http://127.0.0.1:8080/")
	key := fs.String("api-key", "", "API key, sent as Authorization: Bearer")
	limit := fs.Int("limit", 0, "search: candidates per face (1..100; default the service's, 5)")
	threshold := fs.Float64("threshold", 0, "search, verify: largest distance taken as a match (0.2..1.0; default the service's)")
	quality := fs.String("quality", "", "search, verify: least quality a face needs to be matched (none, low, medium, high; default the service's, low)")
	person := fs.String("person", "", "verify: the person to compare the image with")
	collection := fs.String("collection", "", "verify --person: the person's collection (default \"default\")")
	externalID := fs.String("external-id", "", "enroll: the face's id (one image): enrolling again with it replaces the face")
	purge := fs.Bool("purge", false, "delete: also the stored images and Results of the person")
	// Flags may come before or after the command and its arguments.
	var rest []string
	for len(args) > 0 {
		if err := parseFlags(env, fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *url == "" {
		return usageError(env, fs, "--url is required")
	}
	if len(rest) == 0 {
		return usageError(env, fs, "say which command")
	}
	api, err := client.NewAPI(client.APIConfig{URL: *url, APIKey: *key, RetryMax: 4})
	if err != nil {
		return err
	}
	defer api.Close()
	opts := client.Options{Limit: *limit, Threshold: *threshold, Quality: *quality}
	need := func(n int) error {
		if len(rest)-1 < n {
			return usageError(env, fs, fmt.Sprintf("%s needs %d argument(s)", rest[0], n))
		}
		return nil
	}
	var out any
	switch rest[0] {
	case "collections":
		out, err = api.Collections(ctx)
	case "persons":
		if err := need(1); err != nil {
			return err
		}
		out, err = allPages(func(after string) ([]client.Person, string, error) {
			p, err := api.Persons(ctx, rest[1], after, 1000)
			return p.Persons, p.Next, err
		})
	case "faces":
		if err := need(2); err != nil {
			return err
		}
		out, err = allPages(func(after string) ([]client.Face, string, error) {
			p, err := api.Faces(ctx, rest[1], rest[2], after, 1000)
			return p.Faces, p.Next, err
		})
	case "enroll":
		if err := need(3); err != nil {
			return err
		}
		var images []client.Image
		if images, err = readImages(rest[3:]); err != nil {
			return err
		}
		out, err = api.Enroll(ctx, rest[1], rest[2], images, *externalID, opts)
	case "search":
		if err := need(2); err != nil {
			return err
		}
		out, err = withImage(rest[2], func(img client.Image) (any, error) { return api.Search(ctx, rest[1], img, opts) })
	case "detect":
		if err := need(1); err != nil {
			return err
		}
		out, err = withImage(rest[1], func(img client.Image) (any, error) { return api.Detect(ctx, img, opts) })
	case "verify":
		if err := need(1); err != nil {
			return err
		}
		images, rerr := readImages(rest[1:])
		switch {
		case rerr != nil:
			return rerr
		case *person != "" && len(images) == 1:
			out, err = api.VerifyPerson(ctx, images[0], *collection, *person, opts)
		case *person == "" && len(images) == 2:
			out, err = api.Verify(ctx, images[0], images[1], opts)
		default:
			return usageError(env, fs, "verify takes two images, or one image and --person")
		}
	case "delete":
		if err := need(2); err != nil {
			return err
		}
		if len(rest) > 3 {
			out, err = api.DeleteFace(ctx, rest[1], rest[2], rest[3], *purge)
		} else {
			out, err = api.DeletePerson(ctx, rest[1], rest[2], *purge)
		}
	default:
		return usageError(env, fs, fmt.Sprintf("unknown command %q", rest[0]))
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// allPages follows a listing's cursor to its end.
func allPages[T any](get func(after string) ([]T, string, error)) ([]T, error) {
	var out []T
	after := ""
	for {
		items, next, err := get(after)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// readImages reads image files, folders and zips; a .zip given by name is
// sent whole (the service opens it).
func readImages(args []string) ([]client.Image, error) {
	var out []client.Image
	for _, a := range args {
		if strings.HasSuffix(strings.ToLower(a), ".zip") {
			f := imagefiles.OSFile(a)
			b, err := f.Read(0)
			if err != nil {
				return nil, err
			}
			out = append(out, client.Image{Name: f.Base(), Data: b})
			continue
		}
		files, err := imagefiles.List([]string{a})
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := f.Read(0)
			if err != nil {
				return nil, err
			}
			out = append(out, client.Image{Name: f.Base(), Data: b})
		}
	}
	return out, nil
}

func withImage(path string, f func(client.Image) (any, error)) (any, error) {
	images, err := readImages([]string{path})
	if err != nil {
		return nil, err
	}
	if len(images) != 1 {
		return nil, fmt.Errorf("%s: want one image, found %d", path, len(images))
	}
	return f(images[0])
}
