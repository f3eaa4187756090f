// Package tooltest finds the outside programs some tests run (promtool, prometheus,
// systemd-analyze, shells): a test whose program is missing fails when CI is set (.ci/run
// installs them all) and otherwise skips with one line saying how to install it.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of program, or ends the test: a failure under CI, a skip naming
// the Debian package that provides it elsewhere.
func Need(t testing.TB, program, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	msg := program + " is not installed: apt-get install -y --no-install-recommends " + debianPackage
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
