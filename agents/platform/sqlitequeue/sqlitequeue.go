// Package sqlitequeue is the Queue port in one SQLite file that several
// processes share: the local system's request, reply and dead-letter queues
// all live in DIR/queue.db as rows of one table, told apart by name.
//
// It is plain SQL on modernc.org/sqlite (pure Go, no cgo) rather than on
// maragu.dev/goqite: goqite identifies a delivery by the message id alone,
// so it cannot refuse a stale receipt, does not report receive counts or
// depth, and leaves over-received messages in place instead of moving them
// to a dead-letter queue. Those are clauses of the port's contract, and
// each would have meant working around goqite rather than with it.
//
// A receipt is "<message id>.<receive count>": a redelivery raises the
// count, which invalidates every earlier receipt. The file runs in WAL mode
// with a busy timeout, so readers never block writers and writers from
// several processes take turns; every change is one statement or one
// IMMEDIATE transaction, so a process killed at any point leaves the queue
// consistent. A waiting Receive sleeps until its queue's doorbell rings
// (written after each commit that makes a message visible, from any
// process; see bell), until a message in flight is due back, or for at most
// 250 ms; then it looks, reading first and writing only when a message is
// there to take (after a ring it takes at once: a message is most likely
// there). Where no watch can be made it polls every 10 ms instead.
// Receives take the message visible the longest first (one handed back
// waits behind those visible before it), which the messages_ready index
// yields in order: a take reads only the rows it takes, however long the
// queue.
// Each handle prepares its statements once: parsing SQL was a good part of
// what an operation cost.
package sqlitequeue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver

	"github.com/facecloud/facecloud/agents/platform"
)

// DeadLetterSuffix names a queue's dead-letter queue: "<name>-dlq" in the
// same file.
const DeadLetterSuffix = "-dlq"

// Limits, chosen to match SQS so that what works locally works on AWS.
const (
	MinVisibility  = time.Second
	MaxVisibility  = 12 * time.Hour
	MaxMaxReceives = 1000
	MaxMaxBytes    = 256 * 1024
	MaxBatch       = 10
)

// Options are a queue's settings. They belong to the handle, not the file:
// every process opening a queue should use the same ones.
type Options struct {
	// Visibility is how long a received message stays hidden (1s..12h).
	Visibility time.Duration
	// MaxReceives is how many times a message may be received; the next
	// receive moves it to the dead-letter queue instead (0..1000; 0 never
	// dead-letters).
	MaxReceives int
	// MaxBytes is the largest body Send accepts (1..262144).
	MaxBytes int
	// FullSync makes every change durable against power loss (SQLite
	// synchronous=FULL: an fsync per commit, about 15x slower here). Off,
	// changes survive any crash of the processes but the last ones may be
	// lost if the machine itself goes down (synchronous=NORMAL in WAL mode);
	// the file is never corrupted either way.
	FullSync bool
}

// DefaultOptions match the AWS request queue's settings.
var DefaultOptions = Options{Visibility: 30 * time.Second, MaxReceives: 5, MaxBytes: 1024}

// Validate states the allowed ranges.
func (o Options) Validate() error {
	switch {
	case o.Visibility < MinVisibility || o.Visibility > MaxVisibility:
		return fmt.Errorf("visibility %s out of range %s..%s", o.Visibility, MinVisibility, MaxVisibility)
	case o.MaxReceives < 0 || o.MaxReceives > MaxMaxReceives:
		return fmt.Errorf("max_receives %d out of range 0..%d (0: never dead-letter)", o.MaxReceives, MaxMaxReceives)
	case o.MaxBytes < 1 || o.MaxBytes > MaxMaxBytes:
		return fmt.Errorf("max_bytes %d out of range 1..%d", o.MaxBytes, MaxMaxBytes)
	}
	return nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// Queue is one named queue in a shared SQLite file.
type Queue struct {
	db   *sql.DB
	path string
	name string
	opts Options
	st   stmts
	// bell is rung after a commit that makes a message of the queue
	// visible, dlqBell after moving messages to the dead-letter queue.
	bell, dlqBell bell
	// bellW is the watch on the queue's doorbell that wakes waiting
	// receivers; made by the first Receive that waits.
	watchMu sync.Mutex
	bellW   *bellWatch
	// now is the clock every timestamp in the file comes from; tests
	// replace it.
	now func() time.Time
	// member is set on the queues of a Family: Send then refuses (with
	// ErrNotFound) once the queue has been removed.
	member bool
	// found is whether this handle's last take found all it asked for: a
	// receiver behind a backlog (a busy worker) then takes at once,
	// without the look that spares an idle receiver a write.
	found atomic.Bool
}

var (
	_ platform.Queue           = (*Queue)(nil)
	_ platform.BatchDeleter    = (*Queue)(nil)
	_ platform.Taker           = (*Queue)(nil)
	_ platform.Forwarder       = (*Queue)(nil)
	_ platform.ForwardReceiver = (*Queue)(nil)
)

// schemaVersion is stored in the file's user_version; a file written by a
// newer layout is refused rather than misread.
const schemaVersion = 1

const schema = `
create table if not exists messages (
	seq        integer primary key autoincrement,
	queue      text    not null,
	id         text    not null unique,
	body       blob    not null,
	sent_ms    integer not null,
	visible_ms integer not null,
	received   integer not null default 0
) strict;
create index if not exists messages_ready on messages (queue, visible_ms, seq);
create table if not exists queues (
	name       text    primary key,
	touched_ms integer not null
) strict;
`

// Open opens (creating if needed) queue name in the SQLite file at path.
func Open(path, name string, opts Options) (*Queue, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("queue name %q: want 1..80 characters of A-Z, a-z, 0-9, '-' and '_'", name)
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("queue file path %q: want a non-empty path without '?' or '#'", path)
	}
	sync := "NORMAL"
	if opts.FullSync {
		sync = "FULL"
	}
	dsn := "file:" + path + "?" + url.Values{
		"_busy_timeout": {strconv.FormatInt(busyTimeout.Milliseconds(), 10)},
		"_journal_mode": {"WAL"},
		"_synchronous":  {sync},
		"_txlock":       {"immediate"},
	}.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open queue file %s: %w", path, err)
	}
	// One connection per handle: goroutines of this process take turns in
	// Go, which is cheaper than contending through SQLite's busy handler.
	db.SetMaxOpenConns(1)
	q := &Queue{db: db, path: path, name: name, opts: opts, now: time.Now,
		bell: bell{path: bellPath(path, name)}, dlqBell: bell{path: bellPath(path, name+DeadLetterSuffix)}}
	if err := q.migrateWhenFree(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open queue file %s: %w", path, err)
	}
	if err := q.st.prepare(db); err != nil {
		q.st.close()
		db.Close()
		return nil, fmt.Errorf("open queue file %s: %w", path, err)
	}
	return q, nil
}

// stmts are a handle's statements, prepared once on its one connection.
type stmts struct {
	send, sendMember, first, take, takeDelete, deadLetter, deadLetterCopy, del, received, extend, count, inFlight *sql.Stmt
}

func (st *stmts) prepare(db *sql.DB) error {
	for _, s := range []struct {
		to  **sql.Stmt
		sql string
	}{
		{&st.send, `insert into messages (queue, id, body, sent_ms, visible_ms) values (?, ?, ?, ?, ?)`},
		{&st.sendMember, `insert into messages (queue, id, body, sent_ms, visible_ms)
			select ?, ?, ?, ?, ? where exists (select 1 from queues where name = ?)`},
		{&st.first, `select min(visible_ms) from messages where queue = ?`},
		// In the order of the messages_ready index: ordered by seq
		// alone, a take read and sorted every visible message.
		{&st.take, `update messages set received = received + 1, visible_ms = ?
			where seq in (select seq from messages where queue = ? and visible_ms <= ? order by visible_ms, seq limit ?)
			returning seq, id, body, received, sent_ms`},
		{&st.takeDelete, `delete from messages
			where seq in (select seq from messages where queue = ? and visible_ms <= ? order by visible_ms, seq limit ?)
			returning seq, id, body, received + 1, sent_ms`},
		{&st.deadLetter, `update messages set queue = ?, received = 0, visible_ms = ? where seq = ?`},
		{&st.deadLetterCopy, `insert into messages (queue, id, body, sent_ms, visible_ms) values (?, ?, ?, ?, ?)`},
		{&st.del, `delete from messages where queue = ? and id = ? and received = ?`},
		{&st.received, `select received from messages where queue = ? and id = ?`},
		{&st.extend, `update messages set visible_ms = ? where queue = ? and id = ? and received = ?`},
		{&st.count, `select count(*) from messages where queue = ?`},
		{&st.inFlight, `select count(*) from messages where queue = ? and received > 0 and visible_ms > ?`},
	} {
		var err error
		if *s.to, err = db.Prepare(s.sql); err != nil {
			return fmt.Errorf("prepare %q: %w", strings.Join(strings.Fields(s.sql), " "), err)
		}
	}
	return nil
}

func (st *stmts) close() {
	for _, s := range []*sql.Stmt{st.send, st.sendMember, st.first, st.take, st.takeDelete, st.deadLetter, st.deadLetterCopy, st.del, st.received, st.extend, st.count, st.inFlight} {
		if s != nil {
			s.Close()
		}
	}
}

// busyTimeout is how long a write waits for another connection's write to
// end (SQLite's busy handler) before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// migrateWhenFree is migrate, tried again while the file answers
// SQLITE_BUSY, for up to busyTimeout. The first connection to a new file
// turns it to WAL mode; when two processes do that at once, SQLite can
// fail one of them at once with SQLITE_BUSY, without waiting in its busy
// handler, so a web agent and a worker started together on a new data
// directory would see one of them refuse to start. migrate is one
// transaction of idempotent statements, so trying it again is safe.
func (q *Queue) migrateWhenFree() error {
	deadline := time.Now().Add(busyTimeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err := q.migrate()
		if err == nil || !isBusy(err) || time.Now().Add(pause).After(deadline) {
			return err
		}
		time.Sleep(pause)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (5), extended codes
// included.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

func (q *Queue) migrate() error {
	ctx := context.Background()
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `pragma user_version`).Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("queue file layout version %d is newer than this program's %d", v, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `pragma user_version = `+strconv.Itoa(schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// OpenURL opens the queue u names:
//
//	sqlite:///ABS/DIR/queue.db?name=requests&visibility=30s&max_receives=5&max_bytes=1024&sync=normal
//	sqlite://./REL/queue.db?name=requests
//
// Options left out take DefaultOptions, except that a queue whose name ends
// in "-dlq" defaults to max_receives=0, so dead letters stay put.
func OpenURL(ctx context.Context, u *url.URL) (*Queue, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, name, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return Open(path, name, opts)
}

// parseURL reads a queue URL into the file path, the queue name and its options.
func parseURL(u *url.URL) (path, name string, opts Options, err error) {
	if u.Scheme != "sqlite" {
		return "", "", opts, fmt.Errorf("queue URL %q: scheme must be sqlite", u.Redacted())
	}
	path = u.Path
	switch u.Host {
	case "":
	case ".":
		path = "." + path
	default:
		return "", "", opts, fmt.Errorf("queue URL %q: want sqlite:///ABSOLUTE/PATH or sqlite://./RELATIVE/PATH", u.Redacted())
	}
	if path == "" || path == "." || strings.HasSuffix(path, "/") {
		return "", "", opts, fmt.Errorf("queue URL %q: missing the file path", u.Redacted())
	}
	qv := u.Query()
	name = qv.Get("name")
	if name == "" {
		return "", "", opts, fmt.Errorf("queue URL %q: missing ?name=QUEUE", u.Redacted())
	}
	opts = DefaultOptions
	if strings.HasSuffix(name, DeadLetterSuffix) {
		opts.MaxReceives = 0
	}
	for k, vs := range qv {
		v := vs[len(vs)-1]
		switch k {
		case "name":
		case "visibility":
			opts.Visibility, err = time.ParseDuration(v)
		case "max_receives":
			opts.MaxReceives, err = strconv.Atoi(v)
		case "max_bytes":
			opts.MaxBytes, err = strconv.Atoi(v)
		case "sync":
			switch v {
			case "normal":
				opts.FullSync = false
			case "full":
				opts.FullSync = true
			default:
				err = errors.New("want normal or full")
			}
		default:
			return "", "", opts, fmt.Errorf("queue URL %q: unknown option %q (allowed: name, visibility, max_receives, max_bytes, sync)", u.Redacted(), k)
		}
		if err != nil {
			return "", "", opts, fmt.Errorf("queue URL %q: option %s=%q: %w", u.Redacted(), k, v, err)
		}
	}
	return filepath.FromSlash(path), name, opts, nil
}

// Name is the queue's name in its file.
func (q *Queue) Name() string { return q.name }

// Options are the handle's settings.
func (q *Queue) Options() Options { return q.opts }

// DeadLetter opens the queue's dead-letter queue, "<name>-dlq" in the same
// file, which never dead-letters itself. The caller closes it.
func (q *Queue) DeadLetter() (*Queue, error) {
	o := q.opts
	o.MaxReceives = 0
	return Open(q.path, q.name+DeadLetterSuffix, o)
}

func (q *Queue) nowMS() int64 { return q.now().UnixMilli() }

// Send enqueues body.
func (q *Queue) Send(ctx context.Context, body []byte) error {
	if err := q.sendTo(ctx, q.st.send, q.st.sendMember, q, body); err != nil {
		return err
	}
	q.bell.ring()
	return nil
}

// sendTo inserts body into dst (a queue of q's file) with the statements
// send and sendMember (q's, or a transaction's). The caller rings dst's
// bell once the insert is committed.
func (q *Queue) sendTo(ctx context.Context, send, sendMember *sql.Stmt, dst *Queue, body []byte) error {
	if len(body) == 0 {
		return errors.New("send: empty body")
	}
	if len(body) > dst.opts.MaxBytes {
		return fmt.Errorf("send %d bytes to %s (limit %d): %w", len(body), dst.name, dst.opts.MaxBytes, platform.ErrTooLarge)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("send: message id: %w", err)
	}
	now := q.nowMS()
	if dst.member {
		res, err := sendMember.ExecContext(ctx, dst.name, id.String(), body, now, now, dst.name)
		if err != nil {
			return fmt.Errorf("send to %s: %w", dst.name, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return fmt.Errorf("send to %s: the queue has been removed: %w", dst.name, platform.ErrNotFound)
		}
		return nil
	}
	if _, err := send.ExecContext(ctx, dst.name, id.String(), body, now, now); err != nil {
		return fmt.Errorf("send to %s: %w", dst.name, err)
	}
	return nil
}

// Forward sends body to `to`, a queue of the same file, and deletes the
// delivery receipt in one transaction; see platform.Forwarder.
func (q *Queue) Forward(ctx context.Context, to platform.Queue, body []byte, receipt string) (sendErr, delErr error) {
	_, sendErr, delErr = q.forward(ctx, to, body, receipt, 0)
	return sendErr, delErr
}

// ForwardReceive is Forward that also takes up to max visible messages of
// q in the same transaction; see platform.ForwardReceiver.
func (q *Queue) ForwardReceive(ctx context.Context, to platform.Queue, body []byte, receipt string, max int) (next []platform.Message, sendErr, delErr error) {
	if max < 1 || max > MaxBatch {
		return nil, fmt.Errorf("forward from %s: receive max %d out of range 1..%d", q.name, max, MaxBatch), nil
	}
	return q.forward(ctx, to, body, receipt, max)
}

// forward is Forward, and ForwardReceive when max > 0.
func (q *Queue) forward(ctx context.Context, to platform.Queue, body []byte, receipt string, max int) (next []platform.Message, sendErr, delErr error) {
	dst, ok := to.(*Queue)
	if !ok || dst.path != q.path {
		return nil, fmt.Errorf("forward from %s: the destination is not a queue of %s: %w", q.name, q.path, errors.ErrUnsupported), nil
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("forward from %s to %s: %w", q.name, dst.name, err), nil
	}
	defer tx.Rollback()
	sendErr = q.sendTo(ctx, tx.StmtContext(ctx, q.st.send), tx.StmtContext(ctx, q.st.sendMember), dst, body)
	if sendErr != nil && !errors.Is(sendErr, platform.ErrNotFound) {
		return nil, sendErr, nil
	}
	delErr = q.delete(ctx, tx.StmtContext(ctx, q.st.del), tx.StmtContext(ctx, q.st.received), receipt)
	if delErr != nil && !errors.Is(delErr, platform.ErrNotFound) {
		return nil, fmt.Errorf("forward from %s to %s: %w", q.name, dst.name, delErr), nil
	}
	deadLettered := false
	if max > 0 {
		if next, deadLettered, err = q.takeIn(ctx, tx, max, false); err != nil {
			return nil, fmt.Errorf("forward from %s to %s: receive: %w", q.name, dst.name, err), nil
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("forward from %s to %s: %w", q.name, dst.name, err), nil
	}
	if max > 0 {
		q.taken(len(next), max, deadLettered)
	}
	if sendErr == nil {
		dst.bell.ring()
	}
	return next, sendErr, delErr
}

// Waiting in Receive: how often a receiver looks at the file when its
// doorbell does not wake it.
const (
	watchedPoll   = 250 * time.Millisecond // with a watch on the doorbell: a safety net
	unwatchedPoll = 10 * time.Millisecond  // without one: polling is all there is
)

// Receive returns up to n (1..10) messages, waiting up to wait for the first.
func (q *Queue) Receive(ctx context.Context, n int, wait time.Duration) ([]platform.Message, error) {
	return q.receive(ctx, n, wait, false)
}

// Take is Receive that deletes what it returns in the same transaction;
// see platform.Taker.
func (q *Queue) Take(ctx context.Context, n int, wait time.Duration) ([]platform.Message, error) {
	return q.receive(ctx, n, wait, true)
}

// receive is Receive, and Take when del is set.
func (q *Queue) receive(ctx context.Context, n int, wait time.Duration, del bool) ([]platform.Message, error) {
	if n < 1 || n > MaxBatch {
		return nil, fmt.Errorf("receive: max %d out of range 1..%d", n, MaxBatch)
	}
	if wait < 0 {
		return nil, fmt.Errorf("receive: wait %s must not be negative", wait)
	}
	deadline := time.Now().Add(wait)
	var w *bellWatch
	if wait > 0 {
		w = q.watch()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	// The first try takes at once when the last take found all it asked
	// for, each try after a ring too.
	takeFirst := q.found.Load()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Taken before looking, so a commit made while we look still wakes us.
		var changed <-chan struct{}
		poll := unwatchedPoll
		if w != nil {
			if changed = w.next(); changed != nil {
				poll = watchedPoll
			}
		}
		msgs, next, err := q.tryReceive(ctx, n, del, takeFirst)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("receive from %s: %w", q.name, err)
		}
		left := time.Until(deadline)
		if len(msgs) > 0 || left <= 0 {
			return msgs, nil
		}
		pause := min(poll, left)
		if !next.IsZero() {
			// A message in flight becomes visible then: no commit announces it.
			pause = min(pause, time.Until(next)+time.Millisecond)
		}
		timer.Reset(pause) // a pause of 0 or less fires at once
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		case <-changed:
			timer.Stop() // no stale fire to drain since Go 1.23
			takeFirst = true
			continue
		}
		takeFirst = false
	}
}

// tryReceive takes up to max visible messages. It writes only when
// something is visible (a look by reading comes first), unless takeFirst:
// the doorbell announced a commit that made a message visible, or the last
// take found all it asked for and more are likely waiting; then it takes
// at once and reads only when the take came back empty. When nothing is
// visible, next is when the first message in flight becomes visible again
// (zero if none is in flight). With del it deletes what it takes.
func (q *Queue) tryReceive(ctx context.Context, max int, del, takeFirst bool) (msgs []platform.Message, next time.Time, err error) {
	if takeFirst {
		if msgs, err = q.take(ctx, max, del); err != nil || len(msgs) > 0 {
			return msgs, time.Time{}, err
		}
	}
	now := q.nowMS()
	var first sql.NullInt64
	if err := q.st.first.QueryRowContext(ctx, q.name).Scan(&first); err != nil {
		return nil, time.Time{}, err
	}
	if !first.Valid {
		return nil, time.Time{}, nil
	}
	if first.Int64 > now {
		return nil, time.UnixMilli(first.Int64), nil
	}
	msgs, err = q.take(ctx, max, del)
	return msgs, time.Time{}, err
}

// take receives up to max visible messages in one write transaction; see
// takeIn.
func (q *Queue) take(ctx context.Context, max int, del bool) ([]platform.Message, error) {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	msgs, deadLettered, err := q.takeIn(ctx, tx, max, del)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	q.taken(len(msgs), max, deadLettered)
	return msgs, nil
}

// takeIn receives up to max visible messages in tx, the oldest visible
// first (returned in the order they were sent); with del it deletes them
// in it. A message already received MaxReceives times goes to the
// dead-letter queue when a take reaches it, as SQS moves it at the receive
// that would pass the limit, and the take goes on for the rest. (Looking
// for such messages apart from the take read every visible message at
// every receive.) Once tx commits, the caller calls taken.
func (q *Queue) takeIn(ctx context.Context, tx *sql.Tx, max int, del bool) (msgs []platform.Message, deadLettered bool, err error) {
	now := q.nowMS()
	type row struct {
		seq, sentMS int64
		m           platform.Message
	}
	var got, over []row
	for len(got) < max {
		var rows *sql.Rows
		if del {
			rows, err = tx.StmtContext(ctx, q.st.takeDelete).QueryContext(ctx, q.name, now, max-len(got))
		} else {
			rows, err = tx.StmtContext(ctx, q.st.take).QueryContext(ctx,
				now+q.opts.Visibility.Milliseconds(), q.name, now, max-len(got))
		}
		if err != nil {
			return nil, false, err
		}
		over = over[:0]
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.m.ID, &r.m.Body, &r.m.ReceiveCount, &r.sentMS); err != nil {
				rows.Close()
				return nil, false, err
			}
			if q.opts.MaxReceives > 0 && r.m.ReceiveCount > q.opts.MaxReceives {
				over = append(over, r)
				continue
			}
			r.m.Receipt = r.m.ID + "." + strconv.Itoa(r.m.ReceiveCount)
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			return nil, false, err
		}
		rows.Close()
		if len(over) == 0 {
			break
		}
		// Moved, they are no longer visible here: the next round takes others.
		dlq := q.name + DeadLetterSuffix
		for _, r := range over {
			if del {
				_, err = tx.StmtContext(ctx, q.st.deadLetterCopy).ExecContext(ctx, dlq, r.m.ID, r.m.Body, r.sentMS, now)
			} else {
				_, err = tx.StmtContext(ctx, q.st.deadLetter).ExecContext(ctx, dlq, now, r.seq)
			}
			if err != nil {
				return nil, false, fmt.Errorf("dead-letter %s: %w", r.m.ID, err)
			}
		}
		deadLettered = true
	}
	slices.SortFunc(got, func(a, b row) int { return int(a.seq - b.seq) })
	msgs = make([]platform.Message, len(got))
	for i, r := range got {
		msgs[i] = r.m
	}
	return msgs, deadLettered, nil
}

// taken follows a committed takeIn that returned n of max messages.
func (q *Queue) taken(n, max int, deadLettered bool) {
	q.found.Store(n == max)
	if deadLettered {
		q.dlqBell.ring()
	}
}

func parseReceipt(receipt string) (id string, count int, err error) {
	i := strings.LastIndexByte(receipt, '.')
	if i <= 0 {
		return "", 0, fmt.Errorf("receipt %q is malformed: %w", receipt, platform.ErrNotFound)
	}
	count, err = strconv.Atoi(receipt[i+1:])
	if err != nil || count < 1 {
		return "", 0, fmt.Errorf("receipt %q is malformed: %w", receipt, platform.ErrNotFound)
	}
	return receipt[:i], count, nil
}

// Delete removes the message of a delivery. A message already gone is not
// an error; a receipt from an earlier delivery of a message that has since
// been received again fails with platform.ErrNotFound and leaves the
// message to its current holder.
func (q *Queue) Delete(ctx context.Context, receipt string) error {
	return q.delete(ctx, q.st.del, q.st.received, receipt)
}

// DeleteBatch deletes the messages of up to MaxBatch deliveries in one
// transaction (one commit instead of one each), each as Delete would. It
// returns the errors of the receipts that failed, joined; the others are
// deleted.
func (q *Queue) DeleteBatch(ctx context.Context, receipts []string) error {
	if len(receipts) > MaxBatch {
		return fmt.Errorf("delete batch from %s: %d receipts, at most %d", q.name, len(receipts), MaxBatch)
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete batch from %s: %w", q.name, err)
	}
	defer tx.Rollback()
	del, received := tx.StmtContext(ctx, q.st.del), tx.StmtContext(ctx, q.st.received)
	var errs []error
	for _, r := range receipts {
		if err := q.delete(ctx, del, received, r); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete batch from %s: %w", q.name, err)
	}
	return errors.Join(errs...)
}

// delete runs Delete's statements del and received (the handle's, or a
// transaction's).
func (q *Queue) delete(ctx context.Context, del, received *sql.Stmt, receipt string) error {
	id, count, err := parseReceipt(receipt)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	res, err := del.ExecContext(ctx, q.name, id, count)
	if err != nil {
		return fmt.Errorf("delete from %s: %w", q.name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var cur int
	switch err := received.QueryRowContext(ctx, q.name, id).Scan(&cur); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("delete from %s: %w", q.name, err)
	}
	return fmt.Errorf("delete from %s: receipt %s is stale (message received %d times since): %w", q.name, receipt, cur, platform.ErrNotFound)
}

// Extend hides the message of a delivery for d (0..12h) from now.
func (q *Queue) Extend(ctx context.Context, receipt string, d time.Duration) error {
	if d < 0 || d > MaxVisibility {
		return fmt.Errorf("extend: duration %s out of range 0..%s", d, MaxVisibility)
	}
	id, count, err := parseReceipt(receipt)
	if err != nil {
		return fmt.Errorf("extend: %w", err)
	}
	res, err := q.st.extend.ExecContext(ctx, q.nowMS()+d.Milliseconds(), q.name, id, count)
	if err != nil {
		return fmt.Errorf("extend in %s: %w", q.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("extend in %s: %w", q.name, err)
	}
	if n == 0 {
		return fmt.Errorf("extend in %s: receipt %s is no longer valid: %w", q.name, receipt, platform.ErrNotFound)
	}
	// A receiver waiting for this message to come back may now wait too
	// long (it was handed back early) or wake too soon: it looks again.
	q.bell.ring()
	return nil
}

// Depth counts visible and in-flight messages exactly, as of one moment.
//
// The count runs in one read transaction whose snapshot is fixed (by its
// first read) before the clock is read, so every message in it was sent,
// received or handed back at or before that reading: a message sent while
// Depth runs is either not counted or counted as visible, never as in
// flight. In flight also requires a receive (received > 0), since a
// message nobody has received is visible by definition, whatever the
// clocks of the processes that wrote it.
func (q *Queue) Depth(ctx context.Context) (platform.Depth, error) {
	d, err := q.depth(ctx)
	if err != nil {
		return platform.Depth{}, fmt.Errorf("depth of %s: %w", q.name, err)
	}
	return d, nil
}

func (q *Queue) depth(ctx context.Context) (platform.Depth, error) {
	tx, err := q.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // deferred: takes no write lock
	if err != nil {
		return platform.Depth{}, err
	}
	defer tx.Rollback()
	var total, inFlight int
	if err := tx.StmtContext(ctx, q.st.count).QueryRowContext(ctx, q.name).Scan(&total); err != nil {
		return platform.Depth{}, err
	}
	now := q.nowMS()
	if err := tx.StmtContext(ctx, q.st.inFlight).QueryRowContext(ctx, q.name, now).Scan(&inFlight); err != nil {
		return platform.Depth{}, err
	}
	if err := tx.Commit(); err != nil {
		return platform.Depth{}, err
	}
	return platform.Depth{Visible: total - inFlight, InFlight: inFlight}, nil
}

// Close closes the handle; the file and its messages stay.
func (q *Queue) Close() error {
	q.watchMu.Lock()
	if q.bellW != nil {
		q.bellW.close()
		q.bellW = nil
	}
	q.watchMu.Unlock()
	q.bell.close()
	q.dlqBell.close()
	q.st.close()
	if err := q.db.Close(); err != nil {
		return fmt.Errorf("close queue %s: %w", q.name, err)
	}
	return nil
}
