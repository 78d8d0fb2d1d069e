package sqlitequeue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/facecloud/facecloud/agents/platform"
)

// Family is the platform.QueueFamily of the queues of one file whose names
// start with one prefix. Its members are listed in the file's queues table
// (name, last touch), so a member exists from Create to Remove, and Send to
// a removed member fails instead of leaving rows nobody reads.
//
// Addresses are queue URLs: sqlite:///ABS/queue.db?name=PREFIXSUFFIX.
type Family struct {
	q      *Queue // a handle on the file for the family's own statements
	path   string
	name   string // the name prefix
	prefix string // the address up to and including the name prefix
	opts   Options
}

var _ platform.QueueFamily = (*Family)(nil)

// OpenFamily opens the family u names: sqlite:///DIR/queue.db?name=PREFIX
// with the options of OpenURL, which every member gets. The prefix must
// leave room for a 40-character suffix within the 80 of a queue name.
func OpenFamily(ctx context.Context, u *url.URL) (*Family, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, name, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	if len(name) > 40 {
		return nil, fmt.Errorf("queue URL %q: name prefix %q is over 40 characters", u.Redacted(), name)
	}
	q, err := Open(path, name, opts)
	if err != nil {
		return nil, err
	}
	return &Family{q: q, path: path, name: name, prefix: address(path, name), opts: opts}, nil
}

// address is the URL of queue name in the file at path.
func address(path, name string) string {
	return (&url.URL{Scheme: "sqlite", Path: path, RawQuery: "name=" + name}).String()
}

// Prefix is the string every member's address starts with.
func (f *Family) Prefix() string { return f.prefix }

// Contains reports whether address is the prefix followed by a valid suffix.
func (f *Family) Contains(addr string) bool {
	suffix, ok := strings.CutPrefix(addr, f.prefix)
	return ok && platform.ValidMemberSuffix(suffix) == nil
}

// Create adds the member to the queues table (keeping an existing one) and
// opens it.
func (f *Family) Create(ctx context.Context, suffix string) (platform.Queue, string, error) {
	if err := platform.ValidMemberSuffix(suffix); err != nil {
		return nil, "", err
	}
	name := f.name + suffix
	if _, err := f.q.db.ExecContext(ctx, `insert into queues (name, touched_ms) values (?, ?)
		on conflict (name) do update set touched_ms = excluded.touched_ms`, name, f.q.nowMS()); err != nil {
		return nil, "", fmt.Errorf("create queue %s: %w", name, err)
	}
	q, err := f.open(name)
	if err != nil {
		return nil, "", err
	}
	return q, address(f.path, name), nil
}

func (f *Family) open(name string) (*Queue, error) {
	q, err := Open(f.path, name, f.opts)
	if err != nil {
		return nil, err
	}
	q.member = true
	return q, nil
}

// memberName returns the queue name of an address of the family.
func (f *Family) memberName(addr string) (string, error) {
	if !f.Contains(addr) {
		return "", fmt.Errorf("queue %q is not under %s: %w", addr, f.prefix, platform.ErrNotFound)
	}
	return f.name + strings.TrimPrefix(addr, f.prefix), nil
}

// Open returns an existing member.
func (f *Family) Open(ctx context.Context, addr string) (platform.Queue, error) {
	name, err := f.memberName(addr)
	if err != nil {
		return nil, err
	}
	var one int
	switch err := f.q.db.QueryRowContext(ctx, `select 1 from queues where name = ?`, name).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("queue %s does not exist: %w", name, platform.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("open queue %s: %w", name, err)
	}
	return f.open(name)
}

// Touch records the time now for the member.
func (f *Family) Touch(ctx context.Context, addr string) error {
	name, err := f.memberName(addr)
	if err != nil {
		return err
	}
	res, err := f.q.db.ExecContext(ctx, `update queues set touched_ms = ? where name = ?`, f.q.nowMS(), name)
	if err != nil {
		return fmt.Errorf("touch %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("touch %s: %w", name, platform.ErrNotFound)
	}
	return nil
}

// Members lists the family's members, least recently touched first.
func (f *Family) Members(ctx context.Context) ([]platform.Member, error) {
	rows, err := f.q.db.QueryContext(ctx,
		`select name, touched_ms from queues where substr(name, 1, ?) = ? order by touched_ms, name`, len(f.name), f.name)
	if err != nil {
		return nil, fmt.Errorf("list queues %s*: %w", f.name, err)
	}
	defer rows.Close()
	var out []platform.Member
	for rows.Next() {
		var name string
		var ms int64
		if err := rows.Scan(&name, &ms); err != nil {
			return nil, fmt.Errorf("list queues %s*: %w", f.name, err)
		}
		if addr := address(f.path, name); f.Contains(addr) {
			out = append(out, platform.Member{Address: addr, Touched: time.UnixMilli(ms)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list queues %s*: %w", f.name, err)
	}
	return out, nil
}

// Remove deletes the member and its messages in one transaction.
func (f *Family) Remove(ctx context.Context, addr string) error {
	name, err := f.memberName(addr)
	if err != nil {
		return err
	}
	tx, err := f.q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `delete from queues where name = ?`, name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `delete from messages where queue = ?`, name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	// Its doorbells go with it; a receiver still watching one polls.
	for _, bell := range []string{bellPath(f.path, name), bellPath(f.path, name+DeadLetterSuffix)} {
		if err := os.Remove(bell); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return nil
}

// Close closes the family's own handle; the members stay.
func (f *Family) Close() error { return f.q.Close() }
