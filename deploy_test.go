package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"emitop/internal/tooltest"
)

// The alerting rules emitop ships, and their promtool unit tests.
const (
	rulesFile     = "deploy/prometheus/emitop-rules.yml"
	rulesTestFile = "deploy/prometheus/emitop-rules.test.yml"
)

// ruleFile is the part of a Prometheus rule file these tests read.
type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleTests is the part of a promtool test file these tests read.
type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestAlertRulesCoverOnCall: the rules the issue asks for are all there, each with a
// summary, a description and the SSH command that opens its triage, and each has a
// promtool case where it fires and one where it does not.
func TestAlertRulesCoverOnCall(t *testing.T) {
	var rules ruleFile
	readYAML(t, rulesFile, &rules)
	var tests ruleTests
	readYAML(t, rulesTestFile, &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	metricOf := map[string]string{
		"EmitopAccountDown":        `health="down"`,
		"EmitopCredentialsRefused": `health="refused"`,
		"EmitopWindowRunningOut":   "emitop_window_exhausts_in_seconds",
		"EmitopWindowBelowReserve": "emitop_account_reserve_ratio",
		"EmitopRejectionsRising":   "emitop_rejections_total",
		"EmitopEscalationNeeded":   `verdict="escalate"`,
		"EmitopHistoryNotSaved":    "emitop_history_failing",
		"EmitopNotPolling":         "emitop_account_last_poll_timestamp_seconds",
	}
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			seen[r.Alert] = true
			if want, ok := metricOf[r.Alert]; ok && !strings.Contains(r.Expr, want) {
				t.Errorf("%s: expr %q does not read %s", r.Alert, r.Expr, want)
			}
			for _, k := range []string{"summary", "description", "triage"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("%s: no %s", r.Alert, k)
				}
			}
			if !strings.HasPrefix(r.Annotations["triage"], "ssh ") {
				t.Errorf("%s: triage %q is not an ssh command", r.Alert, r.Annotations["triage"])
			}
			if strings.Contains(r.Expr, "account") || strings.Contains(r.Annotations["summary"], "$labels.account") {
				if !strings.Contains(r.Annotations["triage"], "-t account {{ $labels.account }}") {
					t.Errorf("%s: triage %q does not open the account", r.Alert, r.Annotations["triage"])
				}
			}
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("%s: promtool cases: fires %v, quiet %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	for name := range metricOf {
		if !seen[name] {
			t.Errorf("no rule %s", name)
		}
	}
}

// TestAlertRulesPromtool checks the rules and runs their unit tests with promtool.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := tooltest.Need(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(rulesFile)},
		{"test", "rules", filepath.Base(rulesTestFile)},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(rulesFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// units are the systemd units emitop ships.
var units = []string{"deploy/systemd/emitop-poll.service", "deploy/systemd/emitop-serve.service"}

// TestSystemdUnits: each unit runs emitop as its own user with a state directory, no new
// privileges and a read-only system, restarts on failure and stops with SIGTERM; and
// systemd-analyze verifies it with nothing to say (its path to emitop pointed at the
// test's build). A unit with a mistake is caught, so the check can fail.
func TestSystemdUnits(t *testing.T) {
	want := []string{"DynamicUser=yes", "StateDirectory=emitop", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"Restart=on-failure", "KillSignal=SIGTERM", "ExecStart=/usr/local/bin/emitop "}
	texts := map[string]string{}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		texts[u] = string(b)
		for _, w := range want {
			if !strings.Contains(texts[u], "\n"+w) {
				t.Errorf("%s lacks %s", u, w)
			}
		}
	}
	analyze := tooltest.Need(t, "systemd-analyze", "systemd")
	bin := emitopBinary(t)
	verify := func(name, text string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "/usr/local/bin/emitop", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
		if err != nil && len(out) == 0 {
			return err.Error()
		}
		return string(out)
	}
	for u, text := range texts {
		if out := verify(filepath.Base(u), text); out != "" {
			t.Errorf("systemd-analyze verify %s:\n%s", u, out)
		}
	}
	broken := strings.Replace(texts[units[0]], "Restart=on-failure", "Restart=sometimes", 1)
	if out := verify("emitop-broken.service", broken); !strings.Contains(out, "sometimes") {
		t.Errorf("a unit with Restart=sometimes passed verify: %q", out)
	}
}

// TestServeUnitReachesTheOperators: the serve unit listens where the operators, and the
// `ssh -p 2222 HOST` of every alert and notification, reach it: port 2222 on more than
// loopback (a --listen without a host is loopback only).
func TestServeUnitReachesTheOperators(t *testing.T) {
	b, err := os.ReadFile("deploy/systemd/emitop-serve.service")
	if err != nil {
		t.Fatal(err)
	}
	var listen string
	for _, line := range strings.Split(string(b), "\n") {
		if args, ok := strings.CutPrefix(line, "ExecStart="); ok {
			fields := strings.Fields(args)
			if i := slices.Index(fields, "--listen"); i >= 0 && i+1 < len(fields) {
				listen = fields[i+1]
			}
		}
	}
	host, port, err := net.SplitHostPort(listenAddress(listen))
	if err != nil || port != "2222" || net.ParseIP(host) == nil || net.ParseIP(host).IsLoopback() {
		t.Errorf("the serve unit listens at %q (serving %s): the operators' ssh -p 2222 HOST cannot reach it", listen, listenAddress(listen))
	}
}
