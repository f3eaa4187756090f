// Package pgtest starts throwaway PostgreSQL servers for tests: initdb and pg_ctl in a
// temporary directory, listening on loopback only. initdb refuses to run as root, so
// when the tests do (as on these machines and in CI) the tools run as the postgres user
// through runuser. A test package shares one server (Need, stopped by Main) and gives
// each test a schema of its own; a test that restarts its server starts its own (Start).
//
// Where no server can be started a test fails when CI is set (.ci/run installs
// PostgreSQL) and otherwise skips with one line saying how to install it.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// install is what a person without PostgreSQL runs.
const install = "apt-get install -y --no-install-recommends postgresql"

// Cluster is one PostgreSQL server in a temporary directory.
type Cluster struct {
	fsync bool   // the server flushes its WAL to disk (off for tests: faster, same behaviour)
	dir   string // data/, the log and the socket
	bin   string // the folder holding initdb and pg_ctl
	port  int
	owner *user.User // the user the tools run as when the tests run as root; nil otherwise
}

// binaries finds the folder holding initdb, pg_ctl and createdb: pg_ctl's on the PATH
// (through any link), else Debian's /usr/lib/postgresql/<version>/bin, the newest first.
func binaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	for _, f := range found {
		dirs = append(dirs, filepath.Dir(f))
	}
	for _, dir := range dirs {
		complete := true
		for _, tool := range []string{"initdb", "pg_ctl", "createdb"} {
			if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
				complete = false
			}
		}
		if complete {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed (no initdb, pg_ctl, createdb)")
}

// version is the major version in a Debian path /usr/lib/postgresql/<version>/bin/pg_ctl.
func version(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// Start initializes and starts a new server; Remove stops it and deletes its files. With
// fsync false the server never waits for the disk, which keeps tests fast; a benchmark of
// what a store costs wants it true.
func Start(fsync bool) (*Cluster, error) {
	bin, err := binaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "emitop-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{fsync: fsync, dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		if c.owner, err = user.Lookup("postgres"); err != nil {
			c.Remove()
			return nil, fmt.Errorf("running as root, and no postgres user to run initdb as: %w", err)
		}
		uid, _ := strconv.Atoi(c.owner.Uid)
		gid, _ := strconv.Atoi(c.owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			c.Remove()
			return nil, err
		}
	}
	if c.port, err = freePort(); err != nil {
		c.Remove()
		return nil, err
	}
	if err := c.run("initdb", "-D", c.data(), "-U", "emitop", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		c.Remove()
		return nil, err
	}
	if err := c.StartServer(); err != nil {
		c.Remove()
		return nil, err
	}
	if err := c.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "emitop", "emitop"); err != nil {
		c.Remove()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// run runs one of the server's tools, as the postgres user when the tests run as root.
func (c *Cluster) run(tool string, args ...string) error {
	name, argv := filepath.Join(c.bin, tool), args
	if c.owner != nil {
		name, argv = "runuser", append([]string{"-u", c.owner.Username, "--", name}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("%s: %w\n%s%s", tool, err, out.Bytes(), log)
	}
	return nil
}

// freePort is a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartServer starts the server (again), waiting until it takes connections.
func (c *Cluster) StartServer() error {
	fsync := map[bool]string{false: "off", true: "on"}[c.fsync]
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=%s -c max_connections=300", c.port, c.dir, fsync)
	return c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "start")
}

// StopServer stops the server the way an administrator does (fast: every session is
// ended with "terminating connection due to administrator command", what was committed
// is kept).
func (c *Cluster) StopServer() error {
	return c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop")
}

// Remove stops the server at once and deletes its files.
func (c *Cluster) Remove() {
	if _, err := os.Stat(filepath.Join(c.data(), "postmaster.pid")); err == nil {
		_ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(c.dir)
}

// URL is the address of the cluster's emitop database, as user emitop (no password).
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://emitop@127.0.0.1:%d/emitop?sslmode=disable", c.port)
}

// schemas numbers the schemas handed out, so each is new.
var schemas atomic.Int64

// Schema creates a new, empty schema and returns the URL of a store kept in it.
func (c *Cluster) Schema(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), schemas.Add(1))
	db, err := sql.Open("pgx", c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA ` + name); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	return c.URL() + "&search_path=" + url.QueryEscape(name)
}

// shared is the package's one server, started by the first test that needs it.
var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Need returns the package's shared server, starting it on first use, or ends the test:
// a failure under CI, elsewhere a skip saying how to install PostgreSQL.
func Need(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = Start(false) })
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return shared.c
}

// New starts a server for one test alone (with fsync as Start has it), removed when it
// ends; where none can be started it ends the test as Need does.
func New(t testing.TB, fsync bool) *Cluster {
	t.Helper()
	c, err := Start(fsync)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(c.Remove)
	return c
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("PostgreSQL cannot be started: %v", err)
	}
	first, _, _ := bytes.Cut([]byte(err.Error()), []byte("\n"))
	t.Skipf("PostgreSQL cannot be started (%s): %s", first, install)
}

// Main runs a test package's tests and then stops its shared server, if one started.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.c != nil {
		shared.c.Remove()
	}
	return code
}
